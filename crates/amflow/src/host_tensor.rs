//! Host-side tensors and safetensors files.
//!
//! [`HostTensor`] is a plain f32 array with a shape: the currency between files (Hugging Face
//! weights, checkpoints, clips, fixtures) and burn tensors. [`TensorFile`] reads and writes the
//! [safetensors](https://github.com/huggingface/safetensors) format (f32, f16, bf16 and f64 are
//! read; f32 is written), keeping the file's `__metadata__`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{AmflowError, Result};

thread_local! {
    static DEVICE_READS: Cell<u64> = const { Cell::new(0) };
}

/// Reads from a device back to the host that this thread made through the project's code
/// ([`HostTensor::from_tensor`], [`read_values`]): each one waits until the device has
/// finished everything queued before it, so a GPU training step should make as few as it can.
/// Tests count them around a step.
pub fn device_reads() -> u64 {
    DEVICE_READS.with(Cell::get)
}

fn count_device_read() {
    DEVICE_READS.with(|c| c.set(c.get() + 1));
}

/// The values of a (small) tensor on the host, as f32: one counted device read.
pub fn read_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    count_device_read();
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a tensor converted to f32 yields f32 values")
}

/// A dense row-major f32 array on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// The dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The values, row-major; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Builds a host tensor, checking that the data fills the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(AmflowError::Input(format!(
                "shape {shape:?} holds {n} values, got {}",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// Copies a burn tensor to the host (one counted device read, [`device_reads`]).
    pub fn from_tensor<const D: usize>(tensor: &Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let data = read_values(tensor.clone());
        Self { shape, data }
    }

    /// Uploads to a burn tensor of rank `D` on `device`.
    pub fn to_tensor<const D: usize>(&self, device: &Device) -> Result<Tensor<D>> {
        if self.shape.len() != D {
            return Err(AmflowError::Input(format!(
                "expected a rank-{D} tensor, got shape {:?}",
                self.shape
            )));
        }
        let data = TensorData::new(self.data.clone(), self.shape.clone());
        Ok(Tensor::from_data(data, device))
    }

    /// The largest absolute element-wise difference to `other` (infinite if shapes differ).
    pub fn max_abs_diff(&self, other: &HostTensor) -> f32 {
        if self.shape != other.shape {
            return f32::INFINITY;
        }
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }
}

/// The tensors of one safetensors file, converted to f32, with the file's metadata.
#[derive(Debug, Clone, Default)]
pub struct TensorFile {
    /// Tensors by name.
    pub tensors: BTreeMap<String, HostTensor>,
    /// The file's `__metadata__` (string to string).
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// Reads a safetensors file; every tensor is converted to f32.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| AmflowError::io(path, e))?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            AmflowError::SafeTensors { reason, .. } => AmflowError::SafeTensors {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// Parses safetensors bytes; every tensor is converted to f32.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| AmflowError::SafeTensors {
            path: "<bytes>".into(),
            reason,
        };
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let metadata = meta
            .metadata()
            .clone()
            .map(|m| m.into_iter().collect())
            .unwrap_or_default();
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let data = to_f32(&name, &view)?;
            tensors.insert(
                name,
                HostTensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(Self { tensors, metadata })
    }

    /// Serialises to safetensors bytes (all tensors f32, little-endian).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let raw: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name.clone(), bytes, t.shape.clone())
            })
            .collect();
        let mut views = Vec::with_capacity(raw.len());
        for (name, bytes, shape) in &raw {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(|e| {
                AmflowError::SafeTensors {
                    path: "<bytes>".into(),
                    reason: format!("tensor `{name}`: {e}"),
                }
            })?;
            views.push((name.clone(), view));
        }
        let metadata: std::collections::HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let metadata = (!metadata.is_empty()).then_some(metadata);
        safetensors::tensor::serialize(views, &metadata).map_err(|e| AmflowError::SafeTensors {
            path: "<bytes>".into(),
            reason: e.to_string(),
        })
    }

    /// Writes the file atomically: to a temporary file next to `path`, then renamed over it.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::fs_util::write_atomic(path, &bytes)
    }
}

fn to_f32(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
    let dtype = crate::tensor_reader::StoredDtype::parse(&format!("{:?}", view.dtype()), name)?;
    Ok(dtype.decode(view.data()))
}
