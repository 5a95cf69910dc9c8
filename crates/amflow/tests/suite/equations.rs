//! Each equation of the model spec against an independent computation written with plain loops
//! on tiny sizes: vanilla AM flow (softmax over the last axis, column sums, per head), the
//! last-frame rule, one-frame clips, aligned AM flow, column sums, linear attention, each TPM,
//! logit averaging, and the zero-initialised adapters that make an untrained model compute
//! exactly the frozen backbone.

use std::cell::RefCell;

use amflow::flow::{
    aligned_am_flow, attention_column_sums, vanilla_am_flow, AligningEncoder,
    AligningEncoderConfig, LinearAttention,
};
use amflow::nn::{RandomSource, TensorSource, VarBuilder};
use amflow::tpm::{TcnConfig, TemporalConv, TemporalLstm, TemporalUnit, TpmConfig, TpmKind};
use amflow::{AmFlowModel, HostTensor, Preset};
use burn::prelude::*;
use burn::tensor::Distribution;

use super::util::device;

fn host<const D: usize>(t: &Tensor<D>) -> HostTensor {
    HostTensor::from_tensor(t)
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

fn close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((*g as f64 - w).abs() <= tol, "{what}[{i}]: {g} vs {w}");
    }
}

fn with_vb<T>(seed: u64, f: impl FnOnce(&VarBuilder<'_>) -> T) -> T {
    let source = RefCell::new(RandomSource::new(seed));
    let vb = VarBuilder::new(&source as &RefCell<dyn TensorSource>, &device());
    f(&vb)
}

/// Naive vanilla AM flow for one clip-major logits array [B*T, h, N, N] -> [B*T, N, h].
fn naive_vanilla(l: &[f32], b: usize, t: usize, h: usize, n: usize) -> Vec<f64> {
    let idx = |f: usize, k: usize, i: usize, j: usize| ((f * h + k) * n + i) * n + j;
    let mut out = vec![0.0f64; b * t * n * h];
    if t == 1 {
        return out;
    }
    for clip in 0..b {
        for frame in 0..t {
            let (cur, next) = if frame + 1 < t {
                (frame, frame + 1)
            } else {
                (t - 2, t - 1)
            };
            let (fc, fn_) = (clip * t + cur, clip * t + next);
            for k in 0..h {
                for i in 0..n {
                    let diffs: Vec<f64> = (0..n)
                        .map(|j| (l[idx(fc, k, i, j)] as f64 - l[idx(fn_, k, i, j)] as f64).abs())
                        .collect();
                    let max = diffs.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = diffs.iter().map(|d| (d - max).exp()).sum();
                    for (j, d) in diffs.iter().enumerate() {
                        // column sum: F[n = j, k] += S[k, i, j]
                        out[((clip * t + frame) * n + j) * h + k] += (d - max).exp() / z;
                    }
                }
            }
        }
    }
    out
}

#[test]
fn vanilla_am_flow_matches_loops_including_the_last_frame_rule() {
    let (b, t, h, n) = (2, 3, 2, 4);
    let logits = random([b * t, h, n, n]);
    let got = vanilla_am_flow(logits.clone(), b);
    assert_eq!(got.dims(), [b * t, n, h]);
    close(
        "vanilla",
        &host(&got).data,
        &naive_vanilla(&host(&logits).data, b, t, h, n),
        1e-5,
    );
    // Column sums of a row-softmax over N rows sum to N per head.
    let total: f32 = host(&got).data.iter().sum();
    assert!((total - (b * t * h * n) as f32).abs() < 1e-3);
    // The last frame repeats the pair (T-2, T-1).
    let g: Tensor<4> = got.reshape([b, t, n, h]);
    let last = host(&g.clone().narrow(1, t - 1, 1));
    let before = host(&g.narrow(1, t - 2, 1));
    assert_eq!(last.data, before.data);
}

#[test]
fn one_frame_clips_have_zero_am_flow() {
    let logits = random([3, 2, 5, 5]);
    let flow = vanilla_am_flow(logits, 3);
    assert_eq!(flow.dims(), [3, 5, 2]);
    assert!(host(&flow).data.iter().all(|&v| v == 0.0));
    let encoder = with_vb(1, |vb| {
        AligningEncoder::new(
            vb,
            &AligningEncoderConfig {
                dim: 12,
                layers: 1,
                heads: 12,
                mlp_ratio: 4,
            },
            2,
            5,
        )
        .unwrap()
    });
    let flow = aligned_am_flow(random([3, 2, 5, 5]), 3, &encoder);
    assert_eq!(flow.dims(), [3, 5, 12]);
    assert!(host(&flow).data.iter().all(|&v| v == 0.0));
}

#[test]
fn column_sums_and_aligned_am_flow_match_loops() {
    let (b, t, h, n, w) = (2, 3, 2, 5, 12);
    let probs = burn::tensor::activation::softmax(random([b * t, h, n, n]), 3);
    let p = host(&probs);
    let m = attention_column_sums(probs.clone());
    let mut want = vec![0.0f64; b * t * n * h];
    for f in 0..b * t {
        for k in 0..h {
            for i in 0..n {
                for j in 0..n {
                    want[(f * n + j) * h + k] += p.data[((f * h + k) * n + i) * n + j] as f64;
                }
            }
        }
    }
    close("column sums", &host(&m).data, &want, 1e-5);

    let encoder = with_vb(2, |vb| {
        AligningEncoder::new(
            vb,
            &AligningEncoderConfig {
                dim: w,
                layers: 1,
                heads: 12,
                mlp_ratio: 4,
            },
            h,
            n,
        )
        .unwrap()
    });
    // X per frame, encoded one frame at a time (the encoder is shared and frame-independent).
    let xs: Vec<HostTensor> = (0..b * t)
        .map(|f| host(&encoder.forward(m.clone().narrow(0, f, 1))))
        .collect();
    let mut want = vec![0.0f64; b * t * n * w];
    for clip in 0..b {
        for frame in 0..t {
            let (cur, next) = if frame + 1 < t {
                (frame, frame + 1)
            } else {
                (t - 2, t - 1)
            };
            let (xa, xb) = (&xs[clip * t + cur].data, &xs[clip * t + next].data);
            for e in 0..n * w {
                want[(clip * t + frame) * n * w + e] = (xa[e] as f64 - xb[e] as f64).abs();
            }
        }
    }
    close(
        "aligned",
        &host(&aligned_am_flow(probs, b, &encoder)).data,
        &want,
        1e-5,
    );
}

#[test]
fn linear_attention_matches_loops() {
    let (n, w, heads) = (5, 24, 12);
    let dh = w / heads;
    let attn = with_vb(3, |vb| LinearAttention::new(vb, w, heads).unwrap());
    let x = random([1, n, w]);
    let xh = host(&x);
    let lin = |l: &amflow::nn::Linear, v: &[f32]| -> Vec<f64> {
        let (wt, bs) = (host(&l.weight.val()), host(&l.bias.as_ref().unwrap().val()));
        (0..w)
            .map(|o| {
                bs.data[o] as f64
                    + (0..w)
                        .map(|i| wt.data[o * w + i] as f64 * v[i] as f64)
                        .sum::<f64>()
            })
            .collect()
    };
    let phi = |v: f64| if v > 0.0 { v + 1.0 } else { v.exp() };
    let rows: Vec<&[f32]> = (0..n).map(|i| &xh.data[i * w..(i + 1) * w]).collect();
    let q: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| lin(&attn.q, r).into_iter().map(phi).collect())
        .collect();
    let k: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| lin(&attn.k, r).into_iter().map(phi).collect())
        .collect();
    let v: Vec<Vec<f64>> = rows.iter().map(|r| lin(&attn.v, r)).collect();
    let mut merged = vec![vec![0.0f64; w]; n];
    for hd in 0..heads {
        let s = hd * dh;
        for i in 0..n {
            let mut den = 1e-6;
            let mut num = vec![0.0f64; dh];
            for j in 0..n {
                let qk: f64 = (0..dh).map(|c| q[i][s + c] * k[j][s + c]).sum();
                den += qk;
                for c in 0..dh {
                    num[c] += qk * v[j][s + c];
                }
            }
            for c in 0..dh {
                merged[i][s + c] = num[c] / den;
            }
        }
    }
    let (wo, bo) = (
        host(&attn.o.weight.val()),
        host(&attn.o.bias.as_ref().unwrap().val()),
    );
    let mut want = Vec::with_capacity(n * w);
    for row in &merged {
        for o in 0..w {
            want.push(
                bo.data[o] as f64
                    + (0..w)
                        .map(|c| wo.data[o * w + c] as f64 * row[c])
                        .sum::<f64>(),
            );
        }
    }
    close(
        "linear attention",
        &host(&attn.forward(x)).data,
        &want,
        1e-4,
    );
}

#[test]
fn lstm_matches_the_gate_equations() {
    let (bn, t, r) = (2, 4, 3);
    let lstm = with_vb(4, |vb| TemporalLstm::new(vb, r).unwrap());
    let x = random([bn, t, r]);
    let xh = host(&x);
    let (wi, wh) = (host(&lstm.weight_ih.val()), host(&lstm.weight_hh.val()));
    let (bi, bh) = (host(&lstm.bias_ih.val()), host(&lstm.bias_hh.val()));
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let mut want = Vec::new();
    for s in 0..bn {
        let (mut h, mut c) = (vec![0.0f64; r], vec![0.0f64; r]);
        for step in 0..t {
            let xv = &xh.data[(s * t + step) * r..(s * t + step + 1) * r];
            let gate = |g: usize, u: usize| -> f64 {
                let row = g * r + u;
                bi.data[row] as f64
                    + bh.data[row] as f64
                    + (0..r)
                        .map(|i| {
                            wi.data[row * r + i] as f64 * xv[i] as f64
                                + wh.data[row * r + i] as f64 * h[i]
                        })
                        .sum::<f64>()
            };
            let mut nh = vec![0.0; r];
            for u in 0..r {
                let (i, f, g, o) = (
                    sig(gate(0, u)),
                    sig(gate(1, u)),
                    gate(2, u).tanh(),
                    sig(gate(3, u)),
                );
                c[u] = f * c[u] + i * g;
                nh[u] = o * c[u].tanh();
            }
            h = nh;
            want.extend(h.iter().copied());
        }
    }
    close("lstm", &host(&lstm.forward(x)).data, &want, 1e-5);
}

#[test]
fn tcn_matches_dilated_convolution_loops() {
    let (bn, t, r) = (2, 5, 3);
    let cfg = TcnConfig::default();
    let tcn = with_vb(5, |vb| TemporalConv::new(vb, &cfg, r).unwrap());
    let x = random([bn, t, r]);
    let mut cur: Vec<f64> = host(&x).data.iter().map(|&v| v as f64).collect(); // [bn, t, r]
    for (j, layer) in tcn.layers.iter().enumerate() {
        let dil = 1usize << j;
        assert_eq!(layer.dilation, dil);
        let (w, b) = (host(&layer.weight.val()), host(&layer.bias.val()));
        let mut next = cur.clone();
        for s in 0..bn {
            for step in 0..t {
                for o in 0..r {
                    let mut acc = b.data[o] as f64;
                    for kk in 0..3 {
                        let src = step as i64 + (kk as i64 - 1) * dil as i64;
                        if src < 0 || src >= t as i64 {
                            continue; // zero padding
                        }
                        for i in 0..r {
                            acc += w.data[(o * r + i) * 3 + kk] as f64
                                * cur[(s * t + src as usize) * r + i];
                        }
                    }
                    next[(s * t + step) * r + o] += acc.max(0.0);
                }
            }
        }
        cur = next;
    }
    close("tcn", &host(&tcn.forward(x)).data, &cur, 1e-5);
}

#[test]
fn transformer_tpm_rejects_more_frames_than_built_for() {
    let cfg = TpmConfig::new(TpmKind::Transformer);
    let unit = with_vb(6, |vb| TemporalUnit::new(vb, &cfg, 8, 3).unwrap());
    assert!(unit.forward(random([2, 3, 8])).is_ok());
    assert!(unit.forward(random([2, 4, 8])).is_err());
}

#[test]
fn logits_are_the_plain_mean_of_all_heads() {
    let mut config = Preset::Tiny.config();
    config.temporal_blocks = "AM/1(2)".parse().unwrap();
    let (model, _) = AmFlowModel::new(&config, &device()).unwrap();
    let out = model
        .forward_detailed(random([2, 4, 3, 16, 16]), true)
        .unwrap();
    let heads = out.intermediates.unwrap().head_logits;
    assert_eq!(
        heads.len(),
        3,
        "two heads of the one temporal block, plus the final-frame head"
    );
    let mut want = vec![0.0f64; 2 * 5];
    for h in &heads {
        for (w, v) in want.iter_mut().zip(host(h).data) {
            *w += v as f64 / heads.len() as f64;
        }
    }
    close("mean of heads", &host(&out.logits).data, &want, 1e-6);
}

#[test]
fn an_untrained_model_computes_exactly_the_frozen_backbone() {
    // Up starts at zero: the final-frame head sees the plain backbone's output.
    let config = Preset::Tiny.config();
    let (model, _) = AmFlowModel::new(&config, &device()).unwrap();
    let clip = random([2, 4, 3, 16, 16]);
    let out = model.forward_detailed(clip.clone(), true).unwrap();
    let final_head = out.intermediates.unwrap().head_logits.pop().unwrap();
    let frames: Tensor<4> = clip.narrow(1, 3, 1).reshape([2, 3, 16, 16]);
    let (x, _) = model.backbone.forward_plain(frames).unwrap();
    let cls: Tensor<2> = x.narrow(1, 0, 1).reshape([2, 32]);
    let want = model
        .additions
        .final_head
        .forward(model.backbone.final_norm.forward(cls));
    let err = host(&final_head).max_abs_diff(&host(&want));
    assert!(err < 1e-5, "{err}");
}
