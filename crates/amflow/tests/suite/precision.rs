//! Mixed precision of the frozen backbone: a bf16 weight product equals the same product
//! computed on the host from bf16-rounded operands, and the bf16 model's logits stay close to
//! the f32 model's. (Gradients with a bf16 backbone: `gradients.rs`.)

use amflow::backbone::{weight_matmul, BackbonePrecision};
use amflow::{AmFlowModel, HostTensor, Preset};
use burn::tensor::DType;
use half::bf16;

use super::util::device;

fn host(shape: Vec<usize>, seed: u64) -> HostTensor {
    let mut rng = amflow::init::seed_rng(seed);
    let n = shape.iter().product();
    HostTensor::new(shape, (0..n).map(|_| rng.normal() as f32).collect()).unwrap()
}

fn round(v: f32) -> f32 {
    bf16::from_f32(v).to_f32()
}

#[test]
fn bf16_weight_product_matches_a_host_computation() {
    let (rows, d_in, d_out) = (7, 48, 5);
    let x = host(vec![rows, d_in], 1);
    let w = host(vec![d_out, d_in], 2);
    let dev = device();
    let got = weight_matmul(
        x.to_tensor::<2>(&dev).unwrap(),
        w.to_tensor::<2>(&dev).unwrap().cast(DType::BF16),
    );
    assert_eq!(got.dtype(), DType::F32);
    let got = HostTensor::from_tensor(&got);
    for r in 0..rows {
        for o in 0..d_out {
            let exact: f32 = (0..d_in)
                .map(|i| round(x.data[r * d_in + i]) * round(w.data[o * d_in + i]))
                .sum();
            let want = round(exact);
            let g = got.data[r * d_out + o];
            // one bf16 step of the result (the f32 sums may differ in order)
            assert!(
                (g - want).abs() <= want.abs() * 2f32.powi(-7) + 1e-6,
                "[{r}, {o}]: {g} vs {want}"
            );
        }
    }
}

#[test]
fn bf16_backbone_stores_bf16_weights_and_keeps_the_logits_close() {
    let dev = device();
    let config = Preset::Tiny.config();
    let mut half_config = config.clone();
    half_config.backbone.precision = BackbonePrecision::Bf16;
    let (full, _) = AmFlowModel::new(&config, &dev).unwrap();
    let (half, _) = AmFlowModel::new(&half_config, &dev).unwrap();
    assert_eq!(half.backbone.patch_weight.val().dtype(), DType::BF16);
    assert_eq!(
        half.backbone.blocks[0].mlp.fc1.weight.val().dtype(),
        DType::BF16
    );
    assert_eq!(half.backbone.final_norm.weight.val().dtype(), DType::F32);
    // (the logits pass through the whole backbone: the final head reads LN_final of its output)
    let clip = host(vec![2, 4, 3, 16, 16], 3).to_tensor::<5>(&dev).unwrap();
    let a = HostTensor::from_tensor(&full.forward(clip.clone()).unwrap());
    let b = HostTensor::from_tensor(&half.forward(clip).unwrap());
    let scale = a.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a
        .data
        .iter()
        .zip(&b.data)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(scale > 0.0);
    assert!(diff > 0.0, "bf16 changed nothing: was it applied?");
    assert!(
        diff <= 0.05 * scale,
        "bf16 logits differ by {diff} (scale {scale})"
    );
}

#[test]
fn bf16_with_a_trainable_backbone_is_a_config_error() {
    let mut config = Preset::Tiny.config();
    config.backbone.precision = BackbonePrecision::Bf16;
    config.backbone.trainable = true;
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("f32"), "{e}");
}
