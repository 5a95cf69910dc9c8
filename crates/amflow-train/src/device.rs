//! Naming a device (`--device` of the `amflow` command and of the benchmarks): `flex`, `cuda[:N]`,
//! `vulkan`, `wgpu`, `wgpu-gl`. GPU backends exist only when the crate was built with the cargo
//! feature of the same name (`amflow-cli`'s features enable them); asking for one that was not
//! built is an error that says which feature to enable.

use burn::prelude::*;

use crate::error::{Result, TrainError};

macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(TrainError::Device(format!($($arg)*)))
    };
}

/// The devices of a comma-separated list (`cuda:0,cuda:1`): data-parallel training.
/// `flex,flex` runs two CPU replicas in one process (for testing the data-parallel path; it is
/// not faster than one, as both share the same cores).
pub fn parse_many(spec: &str) -> Result<Vec<Device>> {
    spec.split(',').map(|s| parse_one(s.trim())).collect()
}

/// The single device named by `spec`.
pub fn parse(spec: &str) -> Result<Device> {
    if spec.contains(',') {
        bail!("`--device {spec}`: only `amflow train` runs on several devices");
    }
    parse_one(spec)
}

/// The device named by `spec`: `flex`, `cuda`, `cuda:N`, `vulkan`, `wgpu` (wgpu's choice of
/// graphics API), `wgpu-gl` (wgpu pinned to OpenGL: runs on Mesa's llvmpipe where Vulkan's
/// lavapipe crashes, docs/performance.md).
fn parse_one(spec: &str) -> Result<Device> {
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => (
            k,
            Some(
                i.parse::<usize>()
                    .map_err(|e| TrainError::Device(format!("device index in `{spec}`: {e}")))?,
            ),
        ),
        None => (spec, None),
    };
    match kind {
        "flex" | "cpu" => Ok(Device::flex()),
        "cuda" => cuda(index.unwrap_or(0)),
        "vulkan" => vulkan(),
        "wgpu" => wgpu(false),
        "wgpu-gl" => wgpu(true),
        other => {
            bail!("unknown device `{other}` (expected flex, cuda[:N], vulkan, wgpu or wgpu-gl)")
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device> {
    bail!("this amflow was built without CUDA; rebuild with `--features cuda`")
}

#[cfg(feature = "vulkan")]
fn vulkan() -> Result<Device> {
    Ok(Device::vulkan(Default::default()))
}

#[cfg(not(feature = "vulkan"))]
fn vulkan() -> Result<Device> {
    bail!("this amflow was built without Vulkan; rebuild with `--features vulkan`")
}

#[cfg(feature = "wgpu")]
fn wgpu(gl: bool) -> Result<Device> {
    if !gl {
        return Ok(Device::wgpu(Default::default()));
    }
    // cubecl ignores WGPU_BACKEND: the graphics API is chosen here.
    Device::wgpu_options()
        .graphics_api(burn::tensor::wgpu::WgpuBackend::Gl)
        .init()
        .map_err(|e| {
            TrainError::Device(format!(
                "wgpu over OpenGL: {e:?} (Mesa's EGL and GL drivers installed?)"
            ))
        })
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_gl: bool) -> Result<Device> {
    bail!("this amflow was built without wgpu; rebuild with `--features wgpu`")
}
