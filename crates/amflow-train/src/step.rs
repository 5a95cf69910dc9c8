//! The optimizer step that every training loop of the project shares (video training in
//! [`crate::trainer`], image pretraining in [`crate::pretrain`]): micro-batch gradients add up
//! (gradient accumulation), their mean is clipped to a maximum global L2 norm, the learning
//! rate comes from the warm-up + cosine schedule at the step's position, and AdamW updates the
//! parameters. A loop feeds micro-batches with [`Stepper::add`] and applies the step when
//! [`Stepper::is_due`] says so. A step reads one number back from the device: the global norm
//! that clipping needs. Losses and metrics are the loops' own business (they accumulate them on
//! the device).

use std::fmt;

use burn::prelude::*;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Result, TrainError};
use crate::optim::{AdamW, Gradients};
use crate::schedule::WarmupCosine;

/// Global gradient-norm clipping: a maximum L2 norm, or off. In TOML a positive number
/// (`clip_grad_norm = 1.0`) or the string `"off"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GradClip {
    /// No clipping.
    Off,
    /// Rescale the gradients to at most this global norm.
    MaxNorm(f64),
}

impl GradClip {
    /// Checks that a maximum norm is positive and finite.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming `field`.
    pub fn validate(self, field: &str) -> Result<()> {
        match self {
            GradClip::MaxNorm(m) if !(m.is_finite() && m > 0.0) => Err(TrainError::Config(
                format!("{field} must be a positive number or \"off\", got {m}"),
            )),
            _ => Ok(()),
        }
    }
}

impl Serialize for GradClip {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            GradClip::Off => s.serialize_str("off"),
            GradClip::MaxNorm(m) => s.serialize_f64(*m),
        }
    }
}

impl<'de> Deserialize<'de> for GradClip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct ClipVisitor;
        impl Visitor<'_> for ClipVisitor {
            type Value = GradClip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive maximum norm or \"off\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<GradClip, E> {
                Ok(GradClip::MaxNorm(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<GradClip, E> {
                Ok(GradClip::MaxNorm(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<GradClip, E> {
                Ok(GradClip::MaxNorm(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<GradClip, E> {
                match v {
                    "off" => Ok(GradClip::Off),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(ClipVisitor)
    }
}

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTaken {
    /// Optimizer steps taken so far (after this one).
    pub step: u64,
    /// Micro-batches in the step.
    pub micro_batches: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm of the mean gradient, before clipping.
    pub grad_norm: f64,
}

/// Accumulates micro-batches and takes optimizer steps (module docs).
#[derive(Debug)]
pub struct Stepper {
    /// The optimizer (its state is saved and restored by the training loops).
    pub opt: AdamW,
    schedule: WarmupCosine,
    clip: GradClip,
    accumulate: usize,
    grads: Gradients,
    micro: usize,
}

impl Stepper {
    /// A stepper over `opt` that steps every `accumulate` micro-batches.
    ///
    /// # Errors
    /// [`TrainError::Config`] when `accumulate` is 0 or the clipping norm is not positive.
    pub fn new(
        opt: AdamW,
        schedule: WarmupCosine,
        clip: GradClip,
        accumulate: usize,
    ) -> Result<Self> {
        if accumulate == 0 {
            return Err(TrainError::Config("accumulate must be at least 1".into()));
        }
        clip.validate("clip_grad_norm")?;
        Ok(Self {
            opt,
            schedule,
            clip,
            accumulate,
            grads: Gradients::default(),
            micro: 0,
        })
    }

    /// The schedule.
    pub fn schedule(&self) -> &WarmupCosine {
        &self.schedule
    }

    /// The learning rate of the last step taken (of the first one before any).
    pub fn last_lr(&self) -> f64 {
        self.schedule.at(self.opt.step.saturating_sub(1))
    }

    /// Adds one micro-batch's gradients (of its mean loss).
    pub fn add(&mut self, grads: Gradients, device: &Device) {
        self.grads.add(grads, device);
        self.micro += 1;
    }

    /// The gradients of the micro-batches added so far, for passes that add into them.
    pub fn gradients_mut(&mut self) -> &mut Gradients {
        &mut self.grads
    }

    /// Counts one micro-batch whose gradients were added through [`Stepper::gradients_mut`].
    pub fn count_micro_batch(&mut self) {
        self.micro += 1;
    }

    /// Whether a step is due: `accumulate` micro-batches are in, or the epoch ended with some.
    pub fn is_due(&self, epoch_ended: bool) -> bool {
        self.micro == self.accumulate || (epoch_ended && self.micro > 0)
    }

    /// Takes the step: the mean gradient, clipped, at the schedule's learning rate; `update`
    /// applies AdamW to the parts of `model` that train. The accumulator is emptied.
    pub fn step<M>(
        &mut self,
        model: M,
        update: impl FnOnce(&mut AdamW, M, &Gradients, f64) -> M,
    ) -> (M, StepTaken) {
        let micro = self.micro.max(1);
        let mut grads = std::mem::take(&mut self.grads);
        if micro > 1 {
            grads.scale(1.0 / micro as f64);
        }
        let grad_norm = match self.clip {
            GradClip::MaxNorm(max) => grads.clip_global_norm(max),
            GradClip::Off => grads.global_norm(),
        };
        let lr = self.schedule.at(self.opt.step);
        self.opt.next_step();
        let model = update(&mut self.opt, model, &grads, lr);
        let taken = StepTaken {
            step: self.opt.step,
            micro_batches: micro,
            lr,
            grad_norm,
        };
        self.micro = 0;
        (model, taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Holder {
        clip: GradClip,
    }

    #[test]
    fn clipping_reads_a_number_or_off_and_writes_it_back() {
        for (text, clip) in [
            ("clip = 1.5", GradClip::MaxNorm(1.5)),
            ("clip = 2", GradClip::MaxNorm(2.0)),
            ("clip = \"off\"", GradClip::Off),
        ] {
            let h: Holder = toml::from_str(text).unwrap();
            assert_eq!(h.clip, clip);
            let back: Holder = toml::from_str(&toml::to_string(&h).unwrap()).unwrap();
            assert_eq!(back, h);
        }
        assert!(toml::from_str::<Holder>("clip = \"on\"").is_err());
        assert!(GradClip::MaxNorm(0.0).validate("x").is_err());
        assert!(GradClip::MaxNorm(f64::NAN).validate("x").is_err());
        assert!(GradClip::Off.validate("x").is_ok());
    }
}
