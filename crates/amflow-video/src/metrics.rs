//! Evaluation metrics whose definition is part of a dataset's protocol: top-1 accuracy
//! and mean per-class accuracy (the Toyota Smarthome metric: the unweighted mean over
//! classes of each class's recall, classes without test samples left out), and
//! multi-view score averaging (the usual "clips x crops" test protocol).

use crate::error::{DataError, Result};

fn check(predictions: &[usize], labels: &[usize]) -> Result<()> {
    if predictions.len() != labels.len() {
        return Err(DataError::Config(format!(
            "{} predictions for {} labels",
            predictions.len(),
            labels.len()
        )));
    }
    Ok(())
}

/// Fraction of predictions equal to the label (0 for no samples).
///
/// # Errors
/// [`DataError::Config`] when the slices differ in length.
pub fn top1_accuracy(predictions: &[usize], labels: &[usize]) -> Result<f64> {
    check(predictions, labels)?;
    if labels.is_empty() {
        return Ok(0.0);
    }
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(hits as f64 / labels.len() as f64)
}

/// Mean over the classes present in `labels` of the per-class accuracy (recall).
///
/// # Errors
/// [`DataError::Config`] when the slices differ in length or a label is `>= num_classes`.
pub fn mean_class_accuracy(
    predictions: &[usize],
    labels: &[usize],
    num_classes: usize,
) -> Result<f64> {
    check(predictions, labels)?;
    let mut total = vec![0usize; num_classes];
    let mut hits = vec![0usize; num_classes];
    for (&p, &l) in predictions.iter().zip(labels) {
        let t = total
            .get_mut(l)
            .ok_or_else(|| DataError::Config(format!("label {l} >= num_classes {num_classes}")))?;
        *t += 1;
        if p == l {
            hits[l] += 1;
        }
    }
    let present: Vec<f64> = total
        .iter()
        .zip(&hits)
        .filter(|(t, _)| **t > 0)
        .map(|(t, h)| *h as f64 / *t as f64)
        .collect();
    Ok(if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    })
}

/// Averages per-view class scores (`scores[i]` of clip `i`, all the same length) over
/// the views of each sample (`samples[i]`, as in [`Batch::samples`](crate::Batch::samples)),
/// returning `(sample, mean scores)` sorted by sample.
///
/// # Errors
/// [`DataError::Config`] when lengths disagree.
pub fn average_views(scores: &[Vec<f32>], samples: &[usize]) -> Result<Vec<(usize, Vec<f32>)>> {
    if scores.len() != samples.len() {
        return Err(DataError::Config(format!(
            "{} score rows for {} samples",
            scores.len(),
            samples.len()
        )));
    }
    let mut acc: std::collections::BTreeMap<usize, (Vec<f32>, usize)> = Default::default();
    for (s, &k) in scores.iter().zip(samples) {
        let e = acc.entry(k).or_insert_with(|| (vec![0.0; s.len()], 0));
        if e.0.len() != s.len() {
            return Err(DataError::Config("score rows differ in length".into()));
        }
        for (a, v) in e.0.iter_mut().zip(s) {
            *a += v;
        }
        e.1 += 1;
    }
    Ok(acc
        .into_iter()
        .map(|(k, (sum, n))| (k, sum.into_iter().map(|v| v / n as f32).collect()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_class_accuracy_weights_classes_equally() {
        // Class 0: 9 samples all right; class 1: 1 sample wrong.
        let labels = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let preds = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!((top1_accuracy(&preds, &labels).unwrap() - 0.9).abs() < 1e-12);
        assert!((mean_class_accuracy(&preds, &labels, 3).unwrap() - 0.5).abs() < 1e-12);
        assert!(mean_class_accuracy(&preds, &labels, 1).is_err());
        assert!(top1_accuracy(&preds, &labels[..3]).is_err());
    }

    #[test]
    fn views_are_averaged_per_sample() {
        let scores = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.5]];
        let avg = average_views(&scores, &[4, 4, 2]).unwrap();
        assert_eq!(avg, vec![(2, vec![0.5, 0.5]), (4, vec![0.5, 0.5])]);
    }
}
