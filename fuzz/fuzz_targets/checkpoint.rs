//! safetensors files (`TensorFile::from_bytes`: header, dtypes, offsets, metadata) and the
//! checkpoint metadata on top (`checkpoint::read_config`: format, version, stored config).
#![no_main]

use std::path::Path;

use amflow::checkpoint::read_config;
use amflow::host_tensor::TensorFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = TensorFile::from_bytes(data) else {
        return;
    };
    for t in file.tensors.values() {
        assert_eq!(
            t.shape.iter().product::<usize>(),
            t.data.len(),
            "tensor data does not fill its shape"
        );
    }
    let _ = read_config(
        &file,
        Path::new("/nonexistent/amflow-fuzz/last.safetensors"),
    );
    // Writing what was read gives a file that reads back to the same tensors.
    if let Ok(bytes) = file.to_bytes() {
        let back = TensorFile::from_bytes(&bytes).expect("written tensors read back");
        assert_eq!(back.tensors.len(), file.tensors.len());
        assert_eq!(back.metadata, file.metadata);
    }
});
