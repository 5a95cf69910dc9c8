//! Cross-entropy with label smoothing (Szegedy et al. 2016), as PyTorch's
//! `F.cross_entropy(logits, y, label_smoothing=eps)`: the target puts `1 - eps + eps / C` on the
//! true class and `eps / C` elsewhere; the loss is the batch mean.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Mean label-smoothed cross-entropy of `logits` `[B, C]` against `labels`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize], smoothing: f64) -> Tensor<1> {
    let [b, c] = logits.dims();
    let device = logits.device();
    let off = smoothing / c as f64;
    let on = 1.0 - smoothing + off;
    let mut target = vec![off as f32; b * c];
    for (i, &y) in labels.iter().enumerate() {
        target[i * c + y] = on as f32;
    }
    let target = Tensor::<2>::from_data(TensorData::new(target, vec![b, c]), &device);
    (log_softmax(logits, 1) * target)
        .sum()
        .neg()
        .div_scalar(b as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_floats([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], &device);
        let got: f32 = cross_entropy(logits, &[1, 0], 0.1).into_scalar();
        // Independent computation in f64.
        let rows = [[1.0f64, 2.0, 0.5], [0.0, -1.0, 3.0]];
        let labels = [1usize, 0];
        let mut want = 0.0;
        for (r, &y) in rows.iter().zip(&labels) {
            let lse = r.iter().map(|v| v.exp()).sum::<f64>().ln();
            for (k, v) in r.iter().enumerate() {
                let t = if k == y { 0.9 + 0.1 / 3.0 } else { 0.1 / 3.0 };
                want -= t * (v - lse);
            }
        }
        want /= 2.0;
        assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
    }
}
