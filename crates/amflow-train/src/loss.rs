//! Cross-entropy with label smoothing (Szegedy et al. 2016), as PyTorch's
//! `F.cross_entropy(logits, y, label_smoothing=eps)`: the target puts `1 - eps + eps / C` on the
//! true class and `eps / C` elsewhere; the loss is the batch mean.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::error::{Result, TrainError};

/// Mean label-smoothed cross-entropy of `logits` `[B, C]` against `labels`.
///
/// # Errors
/// [`TrainError::Label`] for a label `>= C`, [`TrainError::Config`] when there are not `B`
/// labels.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize], smoothing: f64) -> Result<Tensor<1>> {
    let [b, c] = logits.dims();
    if labels.len() != b {
        return Err(TrainError::Config(format!(
            "{} labels for a batch of {b}",
            labels.len()
        )));
    }
    if let Some(&label) = labels.iter().find(|&&y| y >= c) {
        return Err(TrainError::Label { label, classes: c });
    }
    let device = logits.device();
    let off = smoothing / c as f64;
    let on = 1.0 - smoothing + off;
    let mut target = vec![off as f32; b * c];
    for (i, &y) in labels.iter().enumerate() {
        target[i * c + y] = on as f32;
    }
    let target = Tensor::<2>::from_data(TensorData::new(target, vec![b, c]), &device);
    Ok((log_softmax(logits, 1) * target)
        .sum()
        .neg()
        .div_scalar(b as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_floats([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], &device);
        let got: f32 = cross_entropy(logits.clone(), &[1, 0], 0.1)
            .unwrap()
            .into_scalar();
        assert!(matches!(
            cross_entropy(logits.clone(), &[1, 3], 0.1),
            Err(TrainError::Label {
                label: 3,
                classes: 3
            })
        ));
        assert!(cross_entropy(logits, &[1], 0.1).is_err());
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
