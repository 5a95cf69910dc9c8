//! The product census (feature `product-census`) records the linear layer's product with its
//! shape, kind and timing, in the format `bench/model/product_census.py` reads. Its own test
//! binary: the census file is chosen once per process, before the first product.

use amflow_kernels::{flush_product_census, ops};
use burn::prelude::*;

#[test]
fn the_census_records_each_product_with_its_shape() {
    let path = std::env::temp_dir().join(format!("amflow-census-{}.tsv", std::process::id()));
    // This binary has one test, which sets the variable before anything reads it.
    std::env::set_var("AMFLOW_PRODUCT_CENSUS", &path);
    let device = Device::flex();
    let (rows, d_in, d_out) = (300, 200, 150);
    let x = Tensor::<2>::ones([rows, d_in], &device);
    let w = Tensor::<2>::ones([d_out, d_in], &device);
    let b = Tensor::<1>::zeros([d_out], &device);
    let y = amflow_kernels::on_pool(|| ops::linear(x, w, Some(b)));
    assert_eq!(y.into_data().try_to_vec::<f32>().unwrap()[0], d_in as f32);
    flush_product_census();
    let text = std::fs::read_to_string(&path).expect("the census file was written");
    let _ = std::fs::remove_file(&path);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 1, "one product, one line: {text:?}");
    let line = &lines[0];
    assert_eq!(line.len(), 9, "{line:?}");
    // 300 x 200 x 150 = 9 M multiply-adds: above the parallel threshold, one gemm call.
    assert_eq!(line[..4], ["parallel", "300", "150", "200"]);
    // x's rows are contiguous; W^T, read from W `[out, in]`, has contiguous columns.
    assert_eq!(line[4..6], ["1", "0"]);
    assert!(
        line[6].parse::<usize>().is_ok(),
        "run on a pool thread: {line:?}"
    );
    let duration: u64 = line[8].parse().unwrap();
    assert!(duration > 0);
}
