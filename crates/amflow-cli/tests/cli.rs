//! Integration tests of the `amflow` command: each subcommand end to end, and each error path
//! gives a one-line message and a non-zero exit, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use amflow::{HostTensor, TensorFile};

/// Runs the command, never online (no test reaches the real Hub).
fn amflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amflow"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env(
            "HF_HUB_CACHE",
            std::env::temp_dir().join("amflow-cli-no-hub-cache"),
        )
        .output()
        .expect("the amflow binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("amflow-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn assert_clean_failure(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        stdout(o)
    );
    let err = stderr(o);
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
}

#[test]
fn preset_lists_and_prints_valid_toml() {
    let o = amflow(&["preset"]);
    assert!(o.status.success());
    let names: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    let want: Vec<String> = amflow::Preset::ALL
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    assert_eq!(names, want, "one line per preset, in order");
    for preset in amflow::Preset::ALL {
        let o = amflow(&["preset", preset.name()]);
        assert!(o.status.success());
        let config = amflow::ModelConfig::from_toml_str(&stdout(&o), None).unwrap();
        assert_eq!(config, preset.config(), "{}", preset.name());
    }
}

#[test]
fn info_prints_the_paper_split_for_a_preset() {
    let o = amflow(&["info", "dinov2-b14-am12-transformer"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("backbone 86.58"), "{out}");
    assert!(out.contains("aligning encoders"), "{out}");
    assert!(out.contains("GMACs"), "{out}");
}

#[test]
fn init_info_forward_round_trip() {
    let dir = tmpdir("forward");
    let ckpt = dir.join("tiny.safetensors");
    let o = amflow(&["init", "--config", "tiny", "--out", ckpt.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = amflow(&["info", ckpt.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("format = amflow-checkpoint"),
        "{}",
        stdout(&o)
    );

    // A (B, T, 3, H, W) clip.
    let n = 2 * 4 * 3 * 16 * 16;
    let clip = HostTensor::new(
        vec![2, 4, 3, 16, 16],
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect(),
    )
    .unwrap();
    let clip_path = dir.join("clip.safetensors");
    let mut file = TensorFile::default();
    file.tensors.insert("clip".into(), clip.clone());
    file.write_atomic(&clip_path).unwrap();
    let out_path = dir.join("out.safetensors");
    let o = amflow(&[
        "forward",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--clip",
        clip_path.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = TensorFile::read(&out_path).unwrap();
    assert_eq!(out.tensors["logits"].shape, vec![2, 5]);
    // stdout: one line of logits per clip, the file's numbers.
    let printed: Vec<f32> = stdout(&o)
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(stdout(&o).lines().count(), 2, "one line of logits per clip");
    let written = &out.tensors["logits"].data;
    assert_eq!(printed.len(), written.len());
    for (p, w) in printed.iter().zip(written) {
        // Printed with 6 decimals: at most 5e-7 off.
        assert!((p - w).abs() <= 1e-6, "{p} vs {w}");
    }
    // The logits are the plain mean of the five heads' logits (model spec, section 4).
    let heads: Vec<&HostTensor> = (0..5)
        .map(|k| &out.tensors[&format!("head_logits.{k}")])
        .collect();
    for (i, w) in written.iter().enumerate() {
        let mean = heads.iter().map(|h| h.data[i]).sum::<f32>() / 5.0;
        assert!(
            (mean - w).abs() < 1e-5,
            "logit {i}: heads' mean {mean}, logits {w}"
        );
    }
    assert_eq!(
        out.tensors["blocks.1.attn_logits"].shape,
        vec![2, 4, 4, 17, 17]
    );
    assert_eq!(out.tensors["blocks.0.am_flow"].shape, vec![2, 4, 17, 24]);
    assert_eq!(out.tensors["blocks.1.e_mlp"].shape, vec![2, 4, 17, 8]);
    assert_eq!(
        out.tensors
            .keys()
            .filter(|k| k.starts_with("head_logits."))
            .count(),
        5
    );

    // The same numbers as the library computes.
    let device = burn::prelude::Device::flex();
    let model = amflow::checkpoint::load(&ckpt, &device).unwrap().model;
    let logits = model
        .forward(clip.to_tensor::<5>(&device).unwrap())
        .unwrap();
    assert!(HostTensor::from_tensor(&logits).max_abs_diff(&out.tensors["logits"]) < 1e-6);
}

#[test]
fn demo_runs_and_shows_more_am_flow_for_moving_clips() {
    let o = amflow(&["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let flow = |class: &str| -> f32 {
        let line = out
            .lines()
            .find(|l| l.starts_with(class))
            .unwrap_or_else(|| panic!("{out}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields[3..].iter().map(|v| v.parse::<f32>().unwrap()).sum()
    };
    assert_eq!(out.lines().count(), 12, "{out}");
    assert!(flow("left") > 3.0 * flow("static"), "{out}");
}

#[test]
fn errors_are_one_line_and_non_zero() {
    let dir = tmpdir("errors");
    // Unreadable checkpoint.
    let missing = dir.join("nope.safetensors");
    let o = amflow(&["info", missing.to_str().unwrap()]);
    assert_clean_failure(&o, "neither a file nor a preset");
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint at all").unwrap();
    let o = amflow(&["info", garbage.to_str().unwrap()]);
    assert_clean_failure(&o, "not a valid safetensors file");
    let o = amflow(&[
        "forward",
        "--checkpoint",
        garbage.to_str().unwrap(),
        "--clip",
        "x",
        "--out",
        "y",
    ]);
    assert_clean_failure(&o, "garbage.safetensors");
    // Bad config key.
    let cfg = dir.join("bad.toml");
    let text = amflow::Preset::Tiny
        .config()
        .to_toml()
        .replace("num_frames = 4", "num_frams = 4");
    std::fs::write(&cfg, text).unwrap();
    let o = amflow(&["info", cfg.to_str().unwrap()]);
    assert_clean_failure(&o, "num_frams");
    // Unknown preset, unbuilt device.
    let o = amflow(&["preset", "dinov9"]);
    assert_clean_failure(&o, "unknown preset");
    let o = amflow(&["--device", "cuda", "demo"]);
    assert_clean_failure(&o, "--features cuda");
    // A preset's Hub weights, offline and not cached: one line naming the repository.
    let o = amflow(&[
        "init",
        "--config",
        "dinov2-s14-am12-transformer",
        "--out",
        dir.join("x.safetensors").to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "facebook/dinov2-small@main");
    assert_clean_failure(&o, "HF_HUB_OFFLINE");
    assert!(!Path::new(&dir.join("x.safetensors")).exists());
}

#[test]
fn data_check_reports_every_unusable_file() {
    let dir = tmpdir("datacheck");
    std::fs::copy(
        "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
        dir.join("vtest.avi"),
    )
    .unwrap();
    std::fs::write(dir.join("empty.mp4"), b"").unwrap();
    std::fs::write(
        dir.join("list.txt"),
        "vtest.avi 0\nmissing.mp4 1\nempty.mp4 0\n",
    )
    .unwrap();
    let o = amflow(&["data", "check", dir.join("list.txt").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("missing.mp4") && out.contains("empty.mp4"),
        "{out}"
    );
    assert!(
        out.contains("3 files checked") && out.contains("1 ok, 2 unusable"),
        "{out}"
    );
}
