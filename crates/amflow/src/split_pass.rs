//! A train step's backward pass in three parts, so that the temporal heads' backward passes run
//! side by side on the CPU's cores (burn's autodiff walks one graph on one thread).
//!
//! The forward pass ([`crate::AmFlowModel::forward_split`]) cuts the graph at two places: each
//! temporal head starts from a leaf copy `e'_k` of its input `e_k` (the adapter's bottleneck),
//! and every head's logits `z_k` (the final-frame head's too) enter the mean as leaf copies
//! `z'_k`. The loss is computed from that mean. [`SplitPass::backward`] then runs, by the chain
//! rule:
//!
//! 1. the loss's backward over its own small graph: `dL/dz_k` for every head;
//! 2. every temporal head's backward from `sum(z_k * dL/dz_k)`: its parameters' gradients and
//!    `dL/de_k`, the heads side by side on rayon's pool (each head is its own graph);
//! 3. the backbone's backward from `sum(z_final * dL/dz_final) + sum_k sum(e_k * dL/de_k)`:
//!    the gradients of the adapters, the aligning encoders and the final head.
//!
//! Each surrogate's gradient with respect to `z` or `e` is the injected gradient itself
//! (multiplied by one), so the parameters get the gradients of the one-graph backward, up to
//! the order in which autodiff adds two contributions to one tensor (a commutative sum of two
//! terms: the same value). A test compares the two.

use burn::prelude::*;

use crate::error::{AmflowError, Result};

/// What the forward pass cut out of the graph, in head order.
#[derive(Debug, Default)]
pub(crate) struct SplitParts {
    /// Per temporal head: its input in the backbone's graph and the leaf the head started from.
    inputs: Vec<(Tensor<4>, Tensor<4>)>,
    /// Per head (temporal heads, then the final-frame head): its logits in its own graph.
    logits: Vec<Tensor<2>>,
    /// The same logits as leaves, the ones the loss reads.
    leaves: Vec<Tensor<2>>,
}

impl SplitParts {
    /// The leaf a temporal head starts from instead of `e`.
    pub(crate) fn cut_head_input(&mut self, e: Tensor<4>) -> Tensor<4> {
        let leaf = e.clone().detach().require_grad();
        self.inputs.push((e, leaf.clone()));
        leaf
    }

    /// The heads' logits as leaves, for the mean the loss reads.
    pub(crate) fn cut_head_logits(&mut self, logits: Vec<Tensor<2>>) -> Vec<Tensor<2>> {
        self.leaves = logits
            .iter()
            .map(|z| z.clone().detach().require_grad())
            .collect();
        self.logits = logits;
        self.leaves.clone()
    }
}

/// The forward pass of a train step and how to run its backward
/// ([`crate::AmFlowModel::forward_split`]).
#[derive(Debug)]
pub struct SplitPass {
    /// The model's logits `[B, C]`, for the loss.
    pub logits: Tensor<2>,
    parts: Option<(SplitParts, Device)>,
}

impl SplitPass {
    /// A pass with one graph: its backward is the loss's own.
    pub(crate) fn whole(logits: Tensor<2>) -> Self {
        Self {
            logits,
            parts: None,
        }
    }

    /// A pass cut at `parts`, on `device`.
    pub(crate) fn of_parts(logits: Tensor<2>, parts: SplitParts, device: Device) -> Self {
        Self {
            logits,
            parts: Some((parts, device)),
        }
    }

    /// The gradients of `loss` (a scalar computed from [`SplitPass::logits`]), as one or more
    /// gradient sets that together hold every parameter's gradient once (module docs).
    ///
    /// # Errors
    /// [`AmflowError::Config`] when the loss does not depend on every head's logits (it must be
    /// computed from `logits`).
    pub fn backward(self, loss: Tensor<1>) -> Result<Vec<burn::tensor::Gradients>> {
        let Some((parts, device)) = self.parts else {
            return Ok(vec![loss.backward()]);
        };
        let SplitParts {
            inputs,
            mut logits,
            leaves,
        } = parts;
        let loss_grads = loss.backward();
        let mut upstream = leaves
            .iter()
            .map(|leaf| {
                leaf.grad(&loss_grads).ok_or_else(|| {
                    AmflowError::Config("the loss does not depend on every head's logits".into())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (final_logits, final_grad) = (
            logits.pop().expect("the final-frame head"),
            upstream.pop().expect("the final-frame head"),
        );
        // 2. The temporal heads, side by side.
        let heads: Vec<_> = logits.into_iter().zip(upstream).zip(inputs).collect();
        let head_passes =
            amflow_kernels::map_on_pool_for(&device, heads, |((z, dz), (e, leaf))| {
                let grads = (z * dz).sum().backward();
                let de = leaf.grad(&grads);
                (grads, e, de)
            });
        // 3. The backbone, from the final head and the heads' inputs.
        let mut surrogate = (final_logits * final_grad).sum();
        let mut all = Vec::with_capacity(head_passes.len() + 1);
        for (grads, e, de) in head_passes {
            if let Some(de) = de {
                surrogate = surrogate + (e * de).sum();
            }
            all.push(grads);
        }
        all.push(surrogate.backward());
        Ok(all)
    }
}
