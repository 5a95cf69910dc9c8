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
    let off = smoothing / c as f64;
    let on = 1.0 - smoothing + off;
    let mut target = vec![off as f32; b * c];
    for (i, &y) in labels.iter().enumerate() {
        target[i * c + y] = on as f32;
    }
    soft_cross_entropy(logits, target)
}

/// Mean cross-entropy of `logits` `[B, C]` against soft targets `targets` (`B * C` values,
/// row-major, each row a distribution: Mixup/CutMix targets, [`crate::mixing`]):
/// `-(1/B) sum_i sum_k t_ik log softmax(z_i)_k`.
///
/// # Errors
/// [`TrainError::Config`] when `targets` does not hold `B * C` values.
pub fn soft_cross_entropy(logits: Tensor<2>, targets: Vec<f32>) -> Result<Tensor<1>> {
    let [b, c] = logits.dims();
    if targets.len() != b * c {
        return Err(TrainError::Config(format!(
            "{} soft-target values for {b} x {c} logits",
            targets.len()
        )));
    }
    let device = logits.device();
    let target = Tensor::<2>::from_data(TensorData::new(targets, vec![b, c]), &device);
    Ok((log_softmax(logits, 1) * target)
        .sum()
        .neg()
        .div_scalar(b as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_targets_give_the_direct_sum() {
        let device = Device::flex();
        let z = [[0.3f32, -1.2, 2.0], [1.0, 1.0, -0.5]];
        let t = vec![0.2f32, 0.5, 0.3, 0.7, 0.1, 0.2];
        let logits = Tensor::<2>::from_floats(z, &device);
        let got: f32 = soft_cross_entropy(logits, t.clone()).unwrap().into_scalar();
        let mut want = 0f64;
        for (i, row) in z.iter().enumerate() {
            let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
            for (k, &v) in row.iter().enumerate() {
                want -= t[i * 3 + k] as f64 * (v as f64 - lse);
            }
        }
        want /= 2.0;
        assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        assert!(soft_cross_entropy(Tensor::<2>::zeros([2, 3], &device), vec![0.0; 5]).is_err());
    }

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
