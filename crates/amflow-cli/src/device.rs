//! Parsing `--device` into a burn device. GPU backends exist only when the binary was built
//! with the cargo feature of the same name; asking for one that was not built is an error
//! that says which feature to enable.

use anyhow::{bail, Context, Result};
use burn::prelude::*;

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

/// The device named by `spec`: `flex`, `cuda`, `cuda:N`, `vulkan`, `wgpu`.
fn parse_one(spec: &str) -> Result<Device> {
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => (
            k,
            Some(
                i.parse::<usize>()
                    .with_context(|| format!("device index in `{spec}`"))?,
            ),
        ),
        None => (spec, None),
    };
    match kind {
        "flex" | "cpu" => Ok(Device::flex()),
        "cuda" => cuda(index.unwrap_or(0)),
        "vulkan" => vulkan(),
        "wgpu" => wgpu(),
        other => bail!("unknown device `{other}` (expected flex, cuda[:N], vulkan or wgpu)"),
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
fn wgpu() -> Result<Device> {
    Ok(Device::wgpu(Default::default()))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<Device> {
    bail!("this amflow was built without wgpu; rebuild with `--features wgpu`")
}
