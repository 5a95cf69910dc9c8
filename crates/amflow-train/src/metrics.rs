//! The project's one home for classification metrics (mmaction2's `top_k_accuracy` and
//! `mean_class_accuracy`): top-1 and top-5 accuracy, the confusion matrix, per-class accuracy
//! (recall) and their unweighted mean over the classes that have samples (Toyota Smarthome's
//! metric), and the multi-view protocol's averaging of each view's scores per sample.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Result, TrainError};

/// The index of the largest score (the first one on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Accumulates predictions of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    classes: usize,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    top5_hits: u64,
    count: u64,
}

/// The summary of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Samples evaluated.
    pub samples: u64,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy (top-`C` when there are fewer than 5 classes).
    pub top5: f64,
    /// Mean of the per-class accuracies over classes that have samples.
    pub mean_class_accuracy: f64,
    /// Accuracy per class (`None` for classes without samples).
    pub per_class: Vec<Option<f64>>,
}

impl Evaluation {
    /// An empty evaluation over `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            confusion: vec![vec![0; classes]; classes],
            top5_hits: 0,
            count: 0,
        }
    }

    /// Adds one sample's scores (logits or probabilities, `C` values) and its true label.
    ///
    /// # Errors
    /// [`TrainError::Label`] for a label outside the classes, [`TrainError::Config`] for a
    /// score row of another length.
    pub fn add(&mut self, scores: &[f32], label: usize) -> Result<()> {
        if label >= self.classes {
            return Err(TrainError::Label {
                label,
                classes: self.classes,
            });
        }
        if scores.len() != self.classes {
            return Err(TrainError::Config(format!(
                "{} scores for {} classes",
                scores.len(),
                self.classes
            )));
        }
        let mut order: Vec<usize> = (0..self.classes).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        self.confusion[label][order[0]] += 1;
        if order.iter().take(5).any(|&k| k == label) {
            self.top5_hits += 1;
        }
        self.count += 1;
        Ok(())
    }

    /// The summary.
    pub fn summary(&self) -> Summary {
        let n = self.count.max(1) as f64;
        let correct: u64 = (0..self.classes).map(|k| self.confusion[k][k]).sum();
        let per_class: Vec<Option<f64>> = self
            .confusion
            .iter()
            .enumerate()
            .map(|(k, row)| {
                let total: u64 = row.iter().sum();
                (total > 0).then(|| row[k] as f64 / total as f64)
            })
            .collect();
        let present: Vec<f64> = per_class.iter().flatten().copied().collect();
        Summary {
            samples: self.count,
            top1: correct as f64 / n,
            top5: self.top5_hits as f64 / n,
            mean_class_accuracy: if present.is_empty() {
                0.0
            } else {
                present.iter().sum::<f64>() / present.len() as f64
            },
            per_class,
        }
    }
}

/// Averages per-view class scores over the views of each sample: row `i` of `scores` belongs
/// to sample `samples[i]` (as in [`amflow_video::Batch::samples`]); the label of each sample is
/// `labels[i]` (the same for all its views). Returns `(sample, label, mean scores)` sorted by
/// sample.
///
/// # Errors
/// [`TrainError::Config`] when the lengths disagree or a sample's views disagree on the label
/// or the number of classes.
pub fn average_views(
    scores: &[Vec<f32>],
    samples: &[usize],
    labels: &[usize],
) -> Result<Vec<(usize, usize, Vec<f32>)>> {
    if scores.len() != samples.len() || scores.len() != labels.len() {
        return Err(TrainError::Config(format!(
            "{} score rows for {} samples and {} labels",
            scores.len(),
            samples.len(),
            labels.len()
        )));
    }
    let mut views = ViewAverager::default();
    for ((row, &sample), &label) in scores.iter().zip(samples).zip(labels) {
        views.add(sample, label, row)?;
    }
    Ok(views.means())
}

/// Running sums of the views of each sample (multi-view testing, one batch at a time).
#[derive(Debug, Clone, Default)]
pub struct ViewAverager {
    sums: BTreeMap<usize, (usize, Vec<f64>, usize)>,
}

impl ViewAverager {
    /// Adds one view's scores of `sample` (whose label is `label`).
    ///
    /// # Errors
    /// [`TrainError::Config`] when the sample's earlier views had another label or length.
    pub fn add(&mut self, sample: usize, label: usize, scores: &[f32]) -> Result<()> {
        let entry = self
            .sums
            .entry(sample)
            .or_insert_with(|| (label, vec![0.0; scores.len()], 0));
        if entry.0 != label || entry.1.len() != scores.len() {
            return Err(TrainError::Config(format!(
                "the views of sample {sample} disagree on the label or the number of classes"
            )));
        }
        for (acc, v) in entry.1.iter_mut().zip(scores) {
            *acc += f64::from(*v);
        }
        entry.2 += 1;
        Ok(())
    }

    /// The mean scores per sample: `(sample, label, mean)`, sorted by sample.
    pub fn means(&self) -> Vec<(usize, usize, Vec<f32>)> {
        self.sums
            .iter()
            .map(|(&sample, (label, sum, n))| {
                let mean = sum.iter().map(|s| (s / *n as f64) as f32).collect();
                (sample, *label, mean)
            })
            .collect()
    }

    /// Every sample's mean added to an [`Evaluation`].
    ///
    /// # Errors
    /// As [`Evaluation::add`].
    pub fn evaluate(&self, classes: usize) -> Result<Evaluation> {
        let mut eval = Evaluation::new(classes);
        for (_, label, mean) in self.means() {
            eval.add(&mean, label)?;
        }
        Ok(eval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracies() {
        let mut e = Evaluation::new(3);
        e.add(&[0.9, 0.05, 0.05], 0).unwrap(); // right
        e.add(&[0.1, 0.8, 0.1], 0).unwrap(); // wrong
        e.add(&[0.1, 0.2, 0.7], 2).unwrap(); // right
        let s = e.summary();
        assert!((s.top1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.top5, 1.0);
        assert_eq!(s.per_class, vec![Some(0.5), None, Some(1.0)]);
        assert!((s.mean_class_accuracy - 0.75).abs() < 1e-12);
        assert_eq!(e.confusion[0], vec![1, 1, 0]);
    }

    #[test]
    fn labels_outside_the_classes_and_short_rows_are_errors() {
        let mut e = Evaluation::new(3);
        assert!(matches!(
            e.add(&[0.1, 0.2, 0.7], 3),
            Err(TrainError::Label {
                label: 3,
                classes: 3
            })
        ));
        assert!(e.add(&[0.1, 0.2], 1).is_err());
        assert_eq!(e.summary().samples, 0);
    }

    #[test]
    fn mean_class_accuracy_weights_classes_equally() {
        // Class 0: 9 samples all right; class 1: 1 sample wrong; class 2 absent.
        let mut e = Evaluation::new(3);
        for _ in 0..9 {
            e.add(&[1.0, 0.0, 0.0], 0).unwrap();
        }
        e.add(&[1.0, 0.0, 0.0], 1).unwrap();
        let s = e.summary();
        assert!((s.top1 - 0.9).abs() < 1e-12);
        assert!((s.mean_class_accuracy - 0.5).abs() < 1e-12);
        assert_eq!(s.per_class, vec![Some(1.0), Some(0.0), None]);
    }

    #[test]
    fn top5_counts_the_label_among_the_five_best() {
        let mut e = Evaluation::new(7);
        // Label 6 ranks 6th: not a top-5 hit; label 2 ranks 5th: a hit.
        e.add(&[0.9, 0.8, 0.5, 0.6, 0.7, 0.0, 0.4], 6).unwrap();
        e.add(&[0.9, 0.8, 0.5, 0.6, 0.7, 0.0, 0.4], 2).unwrap();
        assert_eq!(e.summary().top5, 0.5);
        assert_eq!(e.summary().top1, 0.0);
    }

    #[test]
    fn views_are_averaged_per_sample() {
        let scores = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.25]];
        let avg = average_views(&scores, &[4, 4, 2], &[1, 1, 0]).unwrap();
        assert_eq!(avg, vec![(2, 0, vec![0.5, 0.25]), (4, 1, vec![0.5, 0.5])]);
        assert!(average_views(&scores, &[4, 4, 2], &[1, 0, 0]).is_err());
        assert!(average_views(&scores, &[4, 4], &[1, 1]).is_err());
        // One sample, label 0: its second view alone is right, the mean of both is wrong.
        let mut v = ViewAverager::default();
        v.add(0, 0, &[0.2, 0.8]).unwrap();
        v.add(0, 0, &[0.6, 0.4]).unwrap();
        let e = v.evaluate(2).unwrap().summary();
        assert_eq!((e.samples, e.top1), (1, 0.0));
        assert!(
            v.add(0, 1, &[0.5, 0.5]).is_err(),
            "a view with another label"
        );
    }
}
