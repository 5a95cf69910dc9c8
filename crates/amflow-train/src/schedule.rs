//! Learning-rate schedule: linear warm-up from 0 to `lr` over `warmup_steps`, then cosine decay
//! to `min_lr` at `total_steps` (Loshchilov & Hutter 2017, without restarts), evaluated per
//! optimizer step so that a resumed run continues at the exact position.

/// Warm-up + cosine schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Total optimizer steps.
    pub total_steps: u64,
}

impl WarmupCosine {
    /// The learning rate of optimizer step `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        self.min_lr
            + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = WarmupCosine {
            lr: 1.0,
            min_lr: 0.0,
            warmup_steps: 4,
            total_steps: 104,
        };
        assert!((s.at(0) - 0.25).abs() < 1e-12);
        assert!((s.at(3) - 1.0).abs() < 1e-12);
        assert!((s.at(4) - 1.0).abs() < 1e-12);
        assert!((s.at(54) - 0.5).abs() < 1e-12);
        assert!(s.at(104).abs() < 1e-12);
        assert!(s.at(500).abs() < 1e-12);
        let mut prev = f64::MAX;
        for step in 4..104 {
            assert!(s.at(step) <= prev);
            prev = s.at(step);
        }
    }
}
