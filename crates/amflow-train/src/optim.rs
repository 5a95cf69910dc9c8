//! AdamW (Loshchilov & Hutter 2019, PyTorch's `torch.optim.AdamW` update) over the trainable
//! parameters only, keyed by parameter path so that its state is saved and restored by name.
//!
//! ```text
//! p <- p - lr * wd * p                      (decoupled weight decay; not for excluded tensors)
//! m <- b1 m + (1 - b1) g        v <- b2 v + (1 - b2) g^2
//! p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//! ```
//!
//! Weight decay is not applied to tensors of rank <= 1 (biases, LayerNorm weights, the adapter
//! scales) nor to position embeddings (`*.pos_embed`), as in timm and AIM.
//! [`Gradients`] collects gradients by path; several micro-batches add up (gradient
//! accumulation) and [`Gradients::clip_global_norm`] rescales them to a maximum global L2 norm.
//! Each parameter's update is [`amflow_kernels::ops::adamw_step`]: on the CPU backend three
//! fused passes in place, elsewhere burn's ops.

use std::collections::BTreeMap;
use std::path::Path;

use amflow::nn::PathStack;
use amflow::{HostTensor, TensorFile};
use amflow_kernels::ops::{adamw_step, AdamWStep};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// AdamW hyper-parameters (the learning rate comes from the schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// `b1`.
    pub beta1: f64,
    /// `b2`.
    pub beta2: f64,
    /// `eps`.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.05,
        }
    }
}

/// Whether weight decay applies to the tensor `name` of rank `rank`.
pub fn decays(name: &str, rank: usize) -> bool {
    const EXCLUDED: [&str; 3] = ["pos_embed", "pos_embed_delta", "registers"];
    rank >= 2 && !EXCLUDED.iter().any(|e| name.ends_with(e))
}

/// Gradients by parameter path, flattened, off the autodiff graph.
#[derive(Debug, Default)]
pub struct Gradients {
    grads: BTreeMap<String, Tensor<1>>,
}

struct GradCollector<'a> {
    prefix: &'a str,
    path: PathStack,
    source: &'a burn::tensor::Gradients,
    out: &'a mut BTreeMap<String, Tensor<1>>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.source) {
            let n = g.shape().num_elements();
            let g: Tensor<1> = g.reshape([n]);
            let key = format!("{}{}", self.prefix, self.path.path());
            let sum = match self.out.remove(&key) {
                Some(prev) => prev + g,
                None => g,
            };
            self.out.insert(key, sum);
        }
    }
}

impl Gradients {
    /// Adds the gradients that `grads` holds for the parameters of `module`.
    pub fn accumulate<M: Module>(&mut self, module: &M, grads: &burn::tensor::Gradients) {
        self.accumulate_under(module, grads, "");
    }

    /// [`Gradients::accumulate`] with every path prefixed by `prefix` (several modules in one
    /// optimizer, e.g. `backbone.`).
    pub fn accumulate_under<M: Module>(
        &mut self,
        module: &M,
        grads: &burn::tensor::Gradients,
        prefix: &str,
    ) {
        let mut c = GradCollector {
            prefix,
            path: PathStack::default(),
            source: grads,
            out: &mut self.grads,
        };
        module.visit(&mut c);
    }

    /// Adds `other`'s gradients, moved to `device` (data-parallel replicas, micro-batches).
    pub fn add(&mut self, other: Gradients, device: &Device) {
        for (key, g) in other.grads {
            let g = if &g.device() == device {
                g
            } else {
                g.to_device(device)
            };
            let sum = match self.grads.remove(&key) {
                Some(prev) => prev + g,
                None => g,
            };
            self.grads.insert(key, sum);
        }
    }

    /// Multiplies every gradient by `factor` (e.g. `1 / micro-batches`).
    pub fn scale(&mut self, factor: f64) {
        for g in self.grads.values_mut() {
            *g = g.clone().mul_scalar(factor);
        }
    }

    /// The global L2 norm over all gradients. The squares are summed on the gradients' device
    /// and one number is read back (not one per tensor: each read waits for a GPU).
    pub fn global_norm(&self) -> f64 {
        let total = self
            .grads
            .values()
            .map(|g| g.clone().square().sum())
            .reduce(|a, b| a + b);
        total.map_or(0.0, |t| f64::from(amflow::read_values(t)[0]).sqrt())
    }

    /// Rescales the gradients so that their global norm is at most `max_norm`; returns the
    /// norm before clipping.
    pub fn clip_global_norm(&mut self, max_norm: f64) -> f64 {
        let norm = self.global_norm();
        if norm > max_norm && norm > 0.0 {
            self.scale(max_norm / (norm + 1e-6));
        }
        norm
    }

    /// The gradients by parameter path (flattened).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<1>)> {
        self.grads.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Parameters with a gradient.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether no parameter has a gradient.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

/// AdamW state: step count and moments by parameter path.
#[derive(Debug)]
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// Optimizer steps taken.
    pub step: u64,
    moments: BTreeMap<String, (Tensor<1>, Tensor<1>)>,
}

struct Updater<'a> {
    prefix: &'a str,
    path: PathStack,
    opt: &'a mut AdamW,
    grads: &'a Gradients,
    lr: f64,
}

impl ModuleMapper for Updater<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.path.exit(container_type);
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = format!("{}{}", self.prefix, self.path.path());
        let Some(g) = self.grads.grads.get(&name) else {
            return param;
        };
        let c = &self.opt.config;
        let step = AdamWStep {
            lr: self.lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: if decays(&name, D) {
                c.weight_decay
            } else {
                0.0
            },
            step: self.opt.step as i32,
        };
        let (m, v) = match self.opt.moments.remove(&name) {
            Some(mv) => mv,
            None => (g.zeros_like(), g.zeros_like()),
        };
        let moments = &mut self.opt.moments;
        param.map(|p| {
            let dims = p.dims();
            let n = p.shape().num_elements();
            let flat: Tensor<1> = p.detach().reshape([n]);
            let (flat, m, v) = adamw_step(flat, g.clone(), m, v, step);
            moments.insert(name, (m, v));
            flat.reshape(dims).detach().require_grad()
        })
    }
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            step: 0,
            moments: BTreeMap::new(),
        }
    }

    /// One update of `module`'s parameters that have gradients, at learning rate `lr`.
    pub fn step<M: Module>(&mut self, module: M, grads: &Gradients, lr: f64) -> M {
        self.next_step();
        self.update(module, grads, lr, "")
    }

    /// Starts an optimizer step that [`AdamW::update`] then applies to one or more modules.
    pub fn next_step(&mut self) {
        self.step += 1;
    }

    /// Updates `module`'s parameters whose gradients `grads` holds under `prefix` + path, as
    /// part of the step begun by [`AdamW::next_step`].
    pub fn update<M: Module>(&mut self, module: M, grads: &Gradients, lr: f64, prefix: &str) -> M {
        let mut u = Updater {
            prefix,
            path: PathStack::default(),
            opt: self,
            grads,
            lr,
        };
        module.map(&mut u)
    }

    /// The state as named tensors (`m.<path>`, `v.<path>`) and metadata (`step`, `config`),
    /// each key prefixed with `prefix`.
    pub fn export(&self, prefix: &str) -> TensorFile {
        let mut file = TensorFile::default();
        for (name, (m, v)) in &self.moments {
            file.tensors
                .insert(format!("{prefix}m.{name}"), HostTensor::from_tensor(m));
            file.tensors
                .insert(format!("{prefix}v.{name}"), HostTensor::from_tensor(v));
        }
        file.metadata
            .insert(format!("{prefix}step"), self.step.to_string());
        file.metadata.insert(
            format!("{prefix}config"),
            serde_json::to_string(&self.config).expect("serialisable"),
        );
        file
    }

    /// Restores a state exported with `prefix` from `file`, on `device`.
    pub fn import(file: &TensorFile, prefix: &str, device: &Device, origin: &Path) -> Result<Self> {
        let bad = |reason: String| TrainError::Resume {
            path: origin.to_path_buf(),
            reason,
        };
        let step = file
            .metadata
            .get(&format!("{prefix}step"))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("optimizer state has no step".into()))?;
        let config = file
            .metadata
            .get(&format!("{prefix}config"))
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| bad("optimizer state has no config".into()))?;
        let mut moments = BTreeMap::new();
        let m_prefix = format!("{prefix}m.");
        for (key, m) in &file.tensors {
            if let Some(name) = key.strip_prefix(&m_prefix) {
                let v = file
                    .tensors
                    .get(&format!("{prefix}v.{name}"))
                    .ok_or_else(|| bad(format!("`{prefix}v.{name}` is missing")))?;
                let flat = |t: &HostTensor| HostTensor::new(vec![t.data.len()], t.data.clone());
                moments.insert(
                    name.to_string(),
                    (
                        flat(m)?.to_tensor::<1>(device)?,
                        flat(v)?.to_tensor::<1>(device)?,
                    ),
                );
            }
        }
        Ok(Self {
            config,
            step,
            moments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_exclusions() {
        assert!(decays("blocks.0.attn_adapter.down.weight", 2));
        assert!(!decays("blocks.0.attn_adapter.down.bias", 1));
        assert!(!decays("blocks.0.attn_adapter.scale", 1));
        assert!(!decays("blocks.0.attn_temporal.tpm.pos_embed", 2));
        assert!(decays("blocks.0.attn_temporal.tpm.layers.0.weight", 3));
        assert!(!decays("pos_embed_delta", 2));
        assert!(!decays("backbone.registers", 2));
        assert!(!decays("backbone.cls_token", 1));
        assert!(decays("backbone.blocks.0.attention.q.weight", 2));
    }
}
