//! Classification metrics (mmaction2's `top_k_accuracy` and `mean_class_accuracy`): top-k
//! accuracy, the confusion matrix, per-class accuracy and their mean (Toyota Smarthome's metric).

use serde::Serialize;

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
    pub fn add(&mut self, scores: &[f32], label: usize) {
        let mut order: Vec<usize> = (0..self.classes).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        self.confusion[label][order[0]] += 1;
        if order.iter().take(5).any(|&k| k == label) {
            self.top5_hits += 1;
        }
        self.count += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracies() {
        let mut e = Evaluation::new(3);
        e.add(&[0.9, 0.05, 0.05], 0); // right
        e.add(&[0.1, 0.8, 0.1], 0); // wrong
        e.add(&[0.1, 0.2, 0.7], 2); // right
        let s = e.summary();
        assert!((s.top1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.top5, 1.0);
        assert_eq!(s.per_class, vec![Some(0.5), None, Some(1.0)]);
        assert!((s.mean_class_accuracy - 0.75).abs() < 1e-12);
        assert_eq!(e.confusion[0], vec![1, 1, 0]);
    }
}
