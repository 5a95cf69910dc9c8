//! Shared helpers of the integration tests.

use std::path::PathBuf;

use amflow::{HostTensor, TensorFile};
use burn::prelude::*;

/// The path of a committed fixture.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The CPU device tests run on.
pub fn device() -> Device {
    Device::flex()
}

/// Reads a fixture safetensors file.
pub fn read(rel: &str) -> TensorFile {
    TensorFile::read(&fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// Takes a named tensor out of a file.
pub fn get<'a>(file: &'a TensorFile, name: &str) -> &'a HostTensor {
    file.tensors
        .get(name)
        .unwrap_or_else(|| panic!("fixture lacks `{name}`"))
}

/// Asserts two host tensors agree to `tol` (max abs), with a helpful message.
pub fn assert_close(what: &str, got: &HostTensor, want: &HostTensor, tol: f32) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let err = got.max_abs_diff(want);
    assert!(err <= tol, "{what}: max abs error {err:e} > {tol:e}");
}
