//! Building modules from named tensors.
//!
//! A [`VarBuilder`] carries a name prefix and a [`TensorSource`]; constructors ask it for
//! parameters by name (`vb.pp("encoder").pp("layer").pp(0).param("weight", shape, init)`), so the
//! path a constructor builds is the key in the weight file and no renaming table is needed.
//! Two sources exist: [`RandomSource`] (deterministic, seeded by name) and [`FileSource`] (a
//! safetensors file; a missing or mis-shaped tensor is an error naming it, and
//! [`FileSource::finish`] reports tensors that were never used).

use std::cell::RefCell;
use std::collections::BTreeSet;

use burn::module::Param;
use burn::prelude::*;

use crate::error::{AmflowError, Result};
use crate::host_tensor::{HostTensor, TensorFile};
use crate::init::{param_rng, Init};
use crate::tensor_reader::TensorReader;

/// Where parameter values come from.
pub trait TensorSource {
    /// Returns the tensor called `name`, which must have `shape`; `init` says how a random
    /// source fills it.
    fn fetch(&mut self, name: &str, shape: &[usize], init: Init) -> Result<HostTensor>;
}

/// Random values, deterministic per (seed, tensor name).
#[derive(Debug, Clone)]
pub struct RandomSource {
    seed: u64,
}

impl RandomSource {
    /// A random source with a seed.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }
}

impl TensorSource for RandomSource {
    fn fetch(&mut self, name: &str, shape: &[usize], init: Init) -> Result<HostTensor> {
        let mut rng = param_rng(self.seed, name);
        Ok(init.sample(shape, &mut rng))
    }
}

/// What loading a weight file did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Tensors applied to the model.
    pub applied: usize,
    /// Scalars applied (sum of element counts).
    pub applied_values: usize,
    /// Tensors of the file that belong to other components (e.g. CLIP's text tower) or are
    /// known to be unused by inference (e.g. DINOv2's `mask_token`), listed, not applied.
    pub ignored: Vec<String>,
    /// The Hub commit the weights came from (Hub weights only).
    pub hub_commit: Option<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tensors applied ({} values), {} ignored",
            self.applied,
            self.applied_values,
            self.ignored.len()
        )?;
        if !self.ignored.is_empty() {
            let shown: Vec<&str> = self.ignored.iter().take(5).map(String::as_str).collect();
            write!(
                f,
                " ({}{})",
                shown.join(", "),
                if self.ignored.len() > 5 { ", ..." } else { "" }
            )?;
        }
        Ok(())
    }
}

/// Tensors taken from a safetensors file: either parsed whole (small files: checkpoints, the
/// embedded backbone), each tensor moved out as it is used, or read one by one from disk
/// ([`TensorReader`]: weight files).
#[derive(Debug)]
pub struct FileSource {
    store: Store,
    used: BTreeSet<String>,
    applied_values: usize,
}

#[derive(Debug)]
enum Store {
    Parsed(TensorFile),
    Reader(TensorReader),
}

impl FileSource {
    /// A source over a parsed file.
    pub fn new(file: TensorFile) -> Self {
        Self::with_store(Store::Parsed(file))
    }

    /// A source reading tensors from disk as they are asked for.
    pub fn reader(reader: TensorReader) -> Self {
        Self::with_store(Store::Reader(reader))
    }

    fn with_store(store: Store) -> Self {
        Self {
            store,
            used: BTreeSet::new(),
            applied_values: 0,
        }
    }

    /// The names of the tensors not used yet.
    pub fn names(&self) -> Vec<&str> {
        match &self.store {
            Store::Parsed(f) => f.tensors.keys().map(String::as_str).collect(),
            Store::Reader(r) => r
                .tensors()
                .keys()
                .filter(|k| !self.used.contains(*k))
                .map(String::as_str)
                .collect(),
        }
    }

    /// Ends loading: every tensor of the file must have been used, except those for which
    /// `ignorable` returns true (they are listed in the report). The first other unused tensor
    /// is an [`AmflowError::UnexpectedTensor`].
    pub fn finish(self, ignorable: impl Fn(&str) -> bool) -> Result<LoadReport> {
        let unused: Vec<(String, Vec<usize>)> = match &self.store {
            Store::Parsed(f) => f
                .tensors
                .iter()
                .map(|(k, t)| (k.clone(), t.shape.clone()))
                .collect(),
            Store::Reader(r) => r
                .tensors()
                .iter()
                .filter(|(k, _)| !self.used.contains(*k))
                .map(|(k, t)| (k.clone(), t.shape.clone()))
                .collect(),
        };
        let mut ignored = Vec::new();
        for (name, shape) in unused {
            if ignorable(&name) {
                ignored.push(name);
            } else {
                return Err(AmflowError::UnexpectedTensor { name, shape });
            }
        }
        Ok(LoadReport {
            applied: self.used.len(),
            applied_values: self.applied_values,
            ignored,
            hub_commit: None,
        })
    }

    /// The file's metadata.
    pub fn metadata(&self) -> &std::collections::BTreeMap<String, String> {
        match &self.store {
            Store::Parsed(f) => &f.metadata,
            Store::Reader(r) => r.metadata(),
        }
    }
}

impl TensorSource for FileSource {
    fn fetch(&mut self, name: &str, shape: &[usize], _init: Init) -> Result<HostTensor> {
        let missing = || AmflowError::MissingTensor {
            name: name.to_string(),
            expected: shape.to_vec(),
        };
        let found = match &self.store {
            Store::Parsed(f) => f.tensors.get(name).map(|t| t.shape.clone()),
            Store::Reader(r) if !self.used.contains(name) => {
                r.tensors().get(name).map(|t| t.shape.clone())
            }
            Store::Reader(_) => None,
        }
        .ok_or_else(missing)?;
        if found != shape {
            return Err(AmflowError::ShapeMismatch {
                name: name.to_string(),
                expected: shape.to_vec(),
                found,
            });
        }
        let tensor = match &mut self.store {
            Store::Parsed(f) => f.tensors.remove(name).ok_or_else(missing)?,
            Store::Reader(r) => HostTensor {
                shape: found,
                data: r.read_f32(name)?,
            },
        };
        self.used.insert(name.to_string());
        self.applied_values += tensor.data.len();
        Ok(tensor)
    }
}

/// A name prefix over a shared tensor source, on a device.
pub struct VarBuilder<'a> {
    source: &'a RefCell<dyn TensorSource + 'a>,
    prefix: String,
    device: Device,
}

impl<'a> VarBuilder<'a> {
    /// A builder at the root of `source`.
    pub fn new(source: &'a RefCell<dyn TensorSource + 'a>, device: &Device) -> Self {
        Self {
            source,
            prefix: String::new(),
            device: device.clone(),
        }
    }

    /// A builder one level deeper: `prefix.name`.
    pub fn pp(&self, name: impl std::fmt::Display) -> VarBuilder<'a> {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        VarBuilder {
            source: self.source,
            prefix,
            device: self.device.clone(),
        }
    }

    /// The full name of `name` under this prefix.
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The device parameters are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Fetches a host tensor of `shape`.
    pub fn host(&self, name: &str, shape: &[usize], init: Init) -> Result<HostTensor> {
        let full = self.path(name);
        self.source.borrow_mut().fetch(&full, shape, init)
    }

    /// Fetches a tensor of `shape` as a parameter.
    pub fn param<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        init: Init,
    ) -> Result<Param<Tensor<D>>> {
        let host = self.host(name, &shape, init)?;
        let t = Tensor::from_data(TensorData::new(host.data, shape.to_vec()), &self.device);
        Ok(Param::from_tensor(t))
    }
}
