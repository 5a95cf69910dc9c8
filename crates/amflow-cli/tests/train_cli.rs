//! End-to-end CLI tests of the workflow on the tiny preset with generated clips: train, kill
//! with SIGKILL or interrupt with Ctrl-C (SIGINT) and resume (same weights as an uninterrupted
//! run), eval, predict, flow, and a quick ablation study.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use amflow::TensorFile;

#[path = "../../amflow-hub/tests/support/hub_server.rs"]
mod hub_server;

const VIDEO: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

const TINY_RUN: &str = r#"
seed = 1
model = "tiny"
checkpoint_every = 1

[data.synthetic]
val_samples = 10
[data.synthetic.train]
num_samples = 48
num_frames = 4
size = 16
classes = ["static", "left", "right", "up", "down"]

[optim]
epochs = 4
batch_size = 4
lr = 3e-3

[loader]
workers = 1
"#;

/// The command, never online: no test reaches the real Hub (a test that serves weights sets its
/// own loopback `HF_ENDPOINT`).
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_amflow"));
    c.env("RUST_LOG", "warn")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env(
            "HF_HUB_CACHE",
            std::env::temp_dir().join("amflow-cli-no-hub-cache"),
        );
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("amflow runs")
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("amflow-cli-train-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Asserts that the command failed with a one-line error mentioning `needle`.
fn fails_in_one_line(o: &Output, needle: &str) {
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(needle) && err.lines().count() == 1 && !err.contains("panicked"),
        "{err}"
    );
}

fn write_config(d: &Path) -> PathBuf {
    let p = d.join("tiny-run.toml");
    std::fs::write(&p, TINY_RUN).unwrap();
    p
}

fn train(config: &Path, run_dir: &Path) -> Output {
    run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
    ])
}

/// Starts `amflow train` on `config` in `run_dir` and returns once it has saved resume state
/// (or after 2 minutes).
fn spawn_until_saved(config: &Path, run_dir: &Path, stderr: Stdio) -> std::process::Child {
    let child = bin()
        .args([
            "train",
            "--config",
            config.to_str().unwrap(),
            "--run-dir",
            run_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !run_dir.join("state.safetensors").exists() && start.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

#[test]
fn killed_run_resumes_to_the_same_weights_and_the_outputs_work() {
    let d = dir("kill");
    let config = write_config(&d);

    let full = d.join("full");
    ok(&train(&config, &full));
    for f in [
        "config.toml",
        "state.safetensors",
        "last.safetensors",
        "best.safetensors",
        "metrics.jsonl",
        "train.log",
        "curves.png",
    ] {
        assert!(full.join(f).exists(), "{f} missing");
    }
    assert!(std::fs::read_dir(&full).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("events.out.tfevents")));

    // Start the same run, SIGKILL it once it has saved state, resume.
    let killed = d.join("killed");
    let mut child = spawn_until_saved(&config, &killed, Stdio::null());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let epochs_at_kill = std::fs::read_to_string(killed.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    eprintln!("killed after {epochs_at_kill} finished epochs");
    ok(&run(&["train", "--resume", killed.to_str().unwrap()]));
    let a = TensorFile::read(&full.join("last.safetensors")).unwrap();
    let b = TensorFile::read(&killed.join("last.safetensors")).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (name, t) in &a.tensors {
        assert_eq!(t, &b.tensors[name], "{name} differs after kill + resume");
    }

    // Ctrl-C (SIGINT): the run saves the state of its current step, exits with an error
    // saying how to resume, and resuming ends with the same weights.
    let interrupted = d.join("interrupted");
    let child = spawn_until_saved(&config, &interrupted, Stdio::piped());
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("after Ctrl-C: {}", o.status);
    if !o.status.success() {
        // Interrupted before the run ended: one clear line, state saved.
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(stderr.contains("--resume"), "{stderr}");
        ok(&run(&["train", "--resume", interrupted.to_str().unwrap()]));
    }
    let c = TensorFile::read(&interrupted.join("last.safetensors")).unwrap();
    for (name, t) in &a.tensors {
        assert_eq!(t, &c.tensors[name], "{name} differs after Ctrl-C + resume");
    }

    // Evaluation writes its outputs and prints a JSON summary.
    let out = d.join("eval");
    let o = run(&[
        "eval",
        "--checkpoint",
        full.join("best.safetensors").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(summary["top1"].as_f64().unwrap() >= 0.0);
    assert_eq!(summary["classes"].as_array().unwrap().len(), 5);
    for f in [
        "summary.json",
        "per_class.csv",
        "confusion.csv",
        "confusion.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }

    // Predict on real footage, with one missing file: JSON for the good one, error for the other.
    let missing = d.join("missing.mp4");
    let o = run(&[
        "predict",
        "--checkpoint",
        full.join("last.safetensors").to_str().unwrap(),
        "--json",
        "--top-k",
        "3",
        VIDEO,
        missing.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let top = line["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    let labels = ["static", "left", "right", "up", "down"];
    assert!(labels.contains(&top[0]["label"].as_str().unwrap()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("missing.mp4") && !err.contains("panicked"),
        "{err}"
    );

    // The AM flow picture: two frames on top, one map per block below.
    let flow = d.join("flow");
    let o = run(&[
        "flow",
        VIDEO,
        "--checkpoint",
        full.join("last.safetensors").to_str().unwrap(),
        "--out",
        flow.to_str().unwrap(),
    ]);
    ok(&o);
    let png_path = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert!(
        info.width >= 200 && info.height >= 200,
        "{}x{}",
        info.width,
        info.height
    );
}

#[test]
fn training_errors_are_one_line() {
    let d = dir("errors");
    let o = run(&["train", "--resume", d.join("nothing").to_str().unwrap()]);
    fails_in_one_line(&o, "");
    let config = write_config(&d);
    let o = run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--set",
        "optim.learnign_rate=1",
        "--run-dir",
        d.join("r").to_str().unwrap(),
    ]);
    fails_in_one_line(&o, "learnign_rate");
    // A manifest whose videos do not exist: the dataset is missing.
    let manifest = d.join("bad.toml");
    std::fs::write(
        &manifest,
        format!("model = \"tiny\"\n[data.files.train]\nformat = \"path_label\"\nlist = \"{0}/nope.txt\"\n[data.files.val]\nformat = \"path_label\"\nlist = \"{0}/nope.txt\"\n", d.display()),
    )
    .unwrap();
    let o = run(&[
        "train",
        "--config",
        manifest.to_str().unwrap(),
        "--run-dir",
        d.join("r2").to_str().unwrap(),
    ]);
    fails_in_one_line(&o, "nope.txt");
    // Several devices: data-parallel training runs (two CPU replicas); other commands refuse.
    let o = bin()
        .args([
            "--device",
            "flex,flex",
            "train",
            "--config",
            config.to_str().unwrap(),
            "--set",
            "optim.epochs=1",
            "--run-dir",
            d.join("dp").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    ok(&o);
    assert!(d.join("dp").join("last.safetensors").exists());
    let o = run(&[
        "--device",
        "flex,flex",
        "flow",
        VIDEO,
        "--out",
        d.join("f").to_str().unwrap(),
    ]);
    fails_in_one_line(&o, "only `amflow train`");
}

const TINY_STUDY: &str = r#"
seeds = [0, 1]

[base]
model = "tiny"
[base.data.synthetic]
val_samples = 10
[base.data.synthetic.train]
num_samples = 16
num_frames = 4
size = 16
classes = ["static", "left", "right", "up", "down"]
[base.optim]
epochs = 2
batch_size = 4
[base.loader]
workers = 1

[[variants]]
name = "am-flow"
claim = "a"

[[variants]]
name = "scratch"
claim = "e"
set = ["model.backbone.trainable=true"]
"#;

#[test]
fn ablation_study_writes_its_table_and_reuses_finished_runs() {
    let d = dir("ablate");
    let study = d.join("study.toml");
    std::fs::write(&study, TINY_STUDY).unwrap();
    let out = d.join("out");
    let args = [
        "ablate",
        "--config",
        study.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let first = run(&args);
    ok(&first);
    let table = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(table.starts_with("| variant |"), "{table}");
    assert!(table.contains("| am-flow | a | 2 |"), "{table}");
    assert!(table.contains("| scratch | e | 2 |"), "{table}");
    for f in ["ablation.toml", "results.json", "results.md", "curves.png"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    for run_dir in ["runs/am-flow/seed-0", "runs/scratch/seed-1"] {
        assert!(out.join(run_dir).join("last.safetensors").exists());
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 4);
    // Seeds differ, so runs differ.
    let last_loss = |i: usize| {
        json["runs"][i]["history"][1]["train_loss"]
            .as_f64()
            .unwrap()
    };
    assert_ne!(last_loss(0), last_loss(1));

    // A second invocation trains nothing and reports the same table.
    let started = Instant::now();
    let again = run(&args);
    ok(&again);
    assert_eq!(String::from_utf8_lossy(&again.stdout), table);
    eprintln!("second invocation: {:.1}s", started.elapsed().as_secs_f64());

    // A bad variant is a one-line error naming it.
    std::fs::write(
        &study,
        TINY_STUDY.replace("trainable=true", "trainable=true\", \"model.nonsense=1"),
    )
    .unwrap();
    let o = run(&args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("scratch"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A `[data.files]` config over `train` and `val` manifest tables for the tiny model.
fn files_run(train: &str, val: &str) -> String {
    let clips = r#"read = { sampler = { kind = "segment", num_segments = 4 }, resize = { short_side = 16 } }
transform = { stages = [{ op = "center_crop", size = 16 }], normalization = "image_net" }"#;
    format!(
        "seed = 1\nmodel = \"tiny\"\n[data.files]\ntrain = {train}\nval = {val}\n\
         [data.files.train_clips]\n{clips}\n[data.files.val_clips]\nsplit = \"test\"\n{clips}\n\
         [optim]\nepochs = 1\nbatch_size = 4\n[loader]\nworkers = 1\n"
    )
}

#[test]
fn prepared_copy_trains_and_evaluates_like_the_originals() {
    let d = dir("prepared");
    let (list, _) = generated_videos(&d, 10);
    let src = list.parent().unwrap().to_path_buf();
    // One broken entry: left out of the copy (and listed), skipped when reading originals.
    let mut text = std::fs::read_to_string(&list).unwrap();
    text.push_str("videos/missing.mp4 2\n");
    std::fs::write(&list, text).unwrap();

    let prepared = d.join("prepared");
    let o = run(&[
        "data",
        "prepare",
        list.to_str().unwrap(),
        "--out",
        prepared.to_str().unwrap(),
        "--videos-per-shard",
        "4",
        "--workers",
        "2",
    ]);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("missing") && stdout.contains("missing.mp4"),
        "{stdout}"
    );
    assert!(
        stdout.contains("10 videos prepared, 1 left out"),
        "{stdout}"
    );
    let o = run(&["data", "check", prepared.to_str().unwrap(), "--full"]);
    ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("10 files checked"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    let original = format!(
        "{{ format = \"path_label\", list = \"{}\", class_names = \"{}\" }}",
        list.display(),
        src.join("classes.txt").display()
    );
    let copy = format!(
        "{{ format = \"prepared\", dir = \"{}\" }}",
        prepared.display()
    );
    let mut summaries = Vec::new();
    for (tag, spec) in [("original", &original), ("copy", &copy)] {
        let config = d.join(format!("{tag}.toml"));
        std::fs::write(&config, files_run(spec, spec)).unwrap();
        let run_dir = d.join(format!("run-{tag}"));
        ok(&train(&config, &run_dir));
        let o = run(&[
            "eval",
            "--checkpoint",
            run_dir.join("last.safetensors").to_str().unwrap(),
            "--out",
            d.join(format!("eval-{tag}")).to_str().unwrap(),
        ]);
        ok(&o);
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        summaries.push(s);
    }
    let (a, b) = (&summaries[0], &summaries[1]);
    assert_eq!(a["classes"], b["classes"]);
    assert_eq!(a["samples"], b["samples"]);
    assert_eq!(a["samples"].as_u64(), Some(10), "{a}");
}

/// Small generated videos of the five tiny classes: the list file and the class file.
fn generated_videos(d: &Path, samples: usize) -> (PathBuf, PathBuf) {
    use amflow_video::{write_synthetic_dataset, EncodeConfig, MotionClass};
    let ds = amflow_video::SyntheticMotionDataset::new(amflow_video::SyntheticMotionConfig {
        num_samples: samples,
        num_frames: 6,
        size: 16,
        classes: vec![
            MotionClass::Static,
            MotionClass::Left,
            MotionClass::Right,
            MotionClass::Up,
            MotionClass::Down,
        ],
        ..amflow_video::SyntheticMotionConfig::default()
    })
    .unwrap();
    let src = d.join("src");
    write_synthetic_dataset(&ds, &src, &EncodeConfig::default()).unwrap();
    (src.join("list.txt"), src.join("classes.txt"))
}

/// Per video, `predict --json`'s probability of every class (in class order).
fn predicted(checkpoint: &Path, videos: &[PathBuf], input: Option<&Path>) -> Vec<Vec<f64>> {
    let mut args = vec![
        "predict".to_string(),
        "--checkpoint".into(),
        checkpoint.display().to_string(),
        "--json".into(),
        "--top-k".into(),
        "5".into(),
    ];
    if let Some(i) = input {
        args.extend(["--input".into(), i.display().to_string()]);
    }
    args.extend(videos.iter().map(|v| v.display().to_string()));
    let o = bin().args(&args).output().unwrap();
    ok(&o);
    let labels = ["static", "left", "right", "up", "down"];
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut probs = vec![f64::NAN; 5];
            for item in v["top"].as_array().unwrap() {
                let k = labels
                    .iter()
                    .position(|l| *l == item["label"].as_str().unwrap())
                    .unwrap();
                probs[k] = item["probability"].as_f64().unwrap();
            }
            probs
        })
        .collect()
}

#[test]
fn predict_gives_the_validation_scores_of_a_model_trained_with_custom_normalisation() {
    use amflow::HostTensor;
    use amflow_train::{checkpoint, data, TrainConfig};
    let d = dir("contract");
    let (list, classes) = generated_videos(&d, 6);
    let spec = format!(
        "{{ format = \"path_label\", list = \"{}\", class_names = \"{}\" }}",
        list.display(),
        classes.display()
    );
    // Statistics far from ImageNet's, and two temporal views in validation.
    let text = files_run(&spec, &spec)
        .replace(
            "normalization = \"image_net\"",
            "normalization = { custom = { mean = [0.1, 0.8, 0.3], std = [0.9, 0.05, 0.4] } }",
        )
        .replace(
            "split = \"test\"\n",
            "split = \"test\"\ntemporal_views = 2\n",
        );
    let config = d.join("custom.toml");
    std::fs::write(&config, &text).unwrap();
    let run_dir = d.join("run");
    ok(&train(&config, &run_dir));
    let ckpt = run_dir.join("last.safetensors");

    // The training run's validation path: its loader, its batches, softmax averaged per sample.
    let device = burn::prelude::Device::flex();
    let trained = checkpoint::load(&ckpt, &device).unwrap();
    let input = trained
        .input
        .clone()
        .expect("training writes the input contract");
    assert_eq!(
        input.clips.transform.normalization.mean_std(),
        ([0.1, 0.8, 0.3], [0.9, 0.05, 0.4])
    );
    assert_eq!(trained.classes, ["static", "left", "right", "up", "down"]);
    let run_config = TrainConfig::from_file(&run_dir.join("config.toml"), &[]).unwrap();
    let val = data::build(&run_config.data, &trained.model.config)
        .unwrap()
        .val;
    let loader = data::loader("val", val, &run_config.loader, 4, false, 0).unwrap();
    let mut sums = vec![vec![0f64; 5]; 6];
    let mut counts = vec![0usize; 6];
    for batch in loader.epoch(0) {
        let batch = batch.unwrap();
        // As `trainer::evaluate` does: the 8-bit batch normalised on the device.
        let clip =
            amflow_train::input::pixels_on(batch.data.clone(), batch.shape, &batch.norm, &device)
                .unwrap();
        let probs = HostTensor::from_tensor(&burn::tensor::activation::softmax(
            trained.model.forward(clip).unwrap(),
            1,
        ));
        for (row, &sample) in probs.data.chunks(5).zip(&batch.samples) {
            for (s, p) in sums[sample].iter_mut().zip(row) {
                *s += *p as f64;
            }
            counts[sample] += 1;
        }
    }
    assert!(counts.iter().all(|&c| c == 2), "two views each: {counts:?}");
    let videos: Vec<PathBuf> = std::fs::read_to_string(&list)
        .unwrap()
        .lines()
        .map(|l| list.parent().unwrap().join(l.rsplit_once(' ').unwrap().0))
        .collect();
    let got = predicted(&ckpt, &videos, None);
    let mut worst = 0f64;
    for (sample, probs) in got.iter().enumerate() {
        for (k, p) in probs.iter().enumerate() {
            worst = worst.max((p - sums[sample][k] / 2.0).abs());
        }
    }
    assert!(
        worst <= 1e-6,
        "predict differs from validation by {worst:e}"
    );

    // The contract matters: the ImageNet statistics (what the backbone family suggests) give
    // other scores.
    let imagenet = d.join("imagenet.toml");
    let mut guessed = input.clone();
    guessed.clips.transform.normalization = amflow_video::transform::Normalization::ImageNet;
    std::fs::write(&imagenet, guessed.to_toml()).unwrap();
    let other = predicted(&ckpt, &videos, Some(&imagenet));
    let moved = other
        .iter()
        .flatten()
        .zip(got.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f64, f64::max);
    assert!(
        moved > 1e-3,
        "the normalisation changed nothing ({moved:e})"
    );
}

#[test]
fn a_hub_backbone_trains_records_its_commit_and_predicts_offline() {
    use hub_server::{HubServer, ServedRepo};
    let d = dir("hub");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../amflow/tests/fixtures/hf/dinov2_tiny");
    let read = |f: &str| std::fs::read(fixture.join(f)).unwrap();
    let repo = ServedRepo::new(
        "test-org/dinov2-tiny",
        &[
            ("config.json", read("config.json")),
            ("model.safetensors", read("model.safetensors")),
        ],
    );
    let server = HubServer::start(vec![repo.clone()]);
    let cache = d.join("hf-cache");
    let online = |args: &[&str]| {
        bin()
            .args(args)
            .env_remove("HF_HUB_OFFLINE")
            .env("HF_ENDPOINT", server.url())
            .env("HF_HUB_CACHE", &cache)
            .output()
            .unwrap()
    };
    // A model config on the Hub backbone: its architecture from config.json, commit pinned.
    let model = d.join("model.toml");
    ok(&online(&[
        "init",
        "--config",
        "tiny",
        "--backbone",
        "test-org/dinov2-tiny",
        "--out",
        model.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&model).unwrap();
    assert!(text.contains("hub = \"test-org/dinov2-tiny\""), "{text}");
    assert!(
        text.contains(&format!("commit = \"{}\"", repo.commit)),
        "{text}"
    );
    // Leave num_classes out: training takes the data's 5 classes.
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("num_classes"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&model, text).unwrap();
    let run_config = d.join("run.toml");
    std::fs::write(
        &run_config,
        TINY_RUN
            .replace("model = \"tiny\"", "model = \"model.toml\"")
            .replace("epochs = 4", "epochs = 1"),
    )
    .unwrap();
    let run_dir = d.join("run");
    ok(&online(&[
        "train",
        "--config",
        run_config.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
    ]));
    let recorded = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(
        recorded.contains(&format!("commit = \"{}\"", repo.commit)),
        "{recorded}"
    );
    assert!(recorded.contains("num_classes = 5"), "{recorded}");
    // The weights are in the shared cache layout.
    assert!(cache
        .join("models--test-org--dinov2-tiny/snapshots")
        .join(&repo.commit)
        .join("model.safetensors")
        .exists());
    // The Hub gone and offline: the checkpoint loads its pinned weights from the cache.
    server.stop();
    let o = bin()
        .env("HF_HUB_CACHE", &cache)
        .args([
            "predict",
            "--checkpoint",
            run_dir.join("last.safetensors").to_str().unwrap(),
            VIDEO,
        ])
        .output()
        .unwrap();
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("vtest.avi"));
    // Not cached and offline: one line naming the variable.
    let o = run(&[
        "init",
        "--backbone",
        "test-org/not-cached",
        "--out",
        d.join("x.toml").to_str().unwrap(),
    ]);
    fails_in_one_line(&o, "HF_HUB_OFFLINE");
}

/// A tiny model that tells a static object from one moving left (100% on held-out clips after
/// a few seconds of training).
const STATIC_LEFT_RUN: &str = r#"
seed = 1
model = "tiny"

[data.synthetic]
val_samples = 20
[data.synthetic.train]
num_samples = 256
num_frames = 4
size = 16
classes = ["static", "left"]
max_distractors = 0
noise = 0.0
travel = [0.4, 0.6]
fresh_each_call = true

[optim]
epochs = 10
batch_size = 8
lr = 3e-3

[loader]
workers = 1
"#;

/// `amflow predict --timeline` over a 10 s video (4 fps) that is static except for two 1 s
/// stretches of leftward motion, at 3-4 s and 7-8 s: the windows' top class changes exactly
/// four times, each within one stride of a true change, and the CSV and chart are written.
#[test]
fn timeline_finds_the_change_points_of_a_long_video() {
    use amflow_video::{
        write_video, EncodeConfig, MotionClass, RgbFrame, SyntheticMotionConfig,
        SyntheticMotionDataset,
    };
    let d = dir("timeline");
    let config = d.join("static-left.toml");
    std::fs::write(&config, STATIC_LEFT_RUN).unwrap();
    let run_dir = d.join("run");
    let o = run(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--set",
        "model.num_classes=2",
        "--run-dir",
        run_dir.to_str().unwrap(),
    ]);
    ok(&o);

    // Clips unseen in training (another seed): even samples static, odd ones moving left.
    let clips = SyntheticMotionDataset::new(SyntheticMotionConfig {
        num_samples: 8,
        num_frames: 4,
        size: 16,
        classes: vec![MotionClass::Static, MotionClass::Left],
        max_distractors: 0,
        noise: 0.0,
        travel: [0.4, 0.6],
        seed: 77,
        ..SyntheticMotionConfig::default()
    })
    .unwrap();
    let render = |i: usize| clips.render(i).unwrap();
    let still = |i: usize, seconds: usize| -> Vec<RgbFrame> {
        let first = render(i).remove(0);
        vec![first; 4 * seconds]
    };
    let mut frames = still(0, 3);
    frames.extend(render(1));
    frames.extend(still(2, 3));
    frames.extend(render(3));
    frames.extend(still(4, 2));
    assert_eq!(frames.len(), 40);
    let video = d.join("long.mp4");
    let encode = EncodeConfig {
        fps: 4,
        mpeg4_bits_per_pixel: 8.0,
        ..EncodeConfig::default()
    };
    write_video(&video, &frames, &encode).unwrap();

    let out = d.join("timeline");
    let o = run(&[
        "predict",
        "--checkpoint",
        run_dir.join("last.safetensors").to_str().unwrap(),
        "--timeline",
        "--window",
        "1s",
        "--stride",
        "2f",
        "--top-k",
        "2",
        "--out",
        out.to_str().unwrap(),
        video.to_str().unwrap(),
    ]);
    ok(&o);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 1 s windows every 0.5 s over 10 s: starts 0, 0.5, ..., 9.
    assert_eq!(lines.len(), 19);
    let mut changes = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        assert_eq!(line["window"], k);
        let start = line["start_s"].as_f64().unwrap();
        assert!((start - 0.5 * k as f64).abs() < 1e-9, "{line}");
        assert!((line["end_s"].as_f64().unwrap() - start - 1.0).abs() < 1e-9);
        let top = line["top"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        let p: f64 = top.iter().map(|t| t["probability"].as_f64().unwrap()).sum();
        assert!((p - 1.0).abs() < 1e-4, "{line}");
        if k > 0 && top[0]["label"] != lines[k - 1]["top"][0]["label"] {
            changes.push((start, top[0]["label"].as_str().unwrap().to_string()));
        }
    }
    assert_eq!(lines[0]["top"][0]["label"], "static");
    let labels: Vec<String> = lines
        .iter()
        .map(|l| l["top"][0]["label"].as_str().unwrap().to_string())
        .collect();
    let truth = [
        (3.0, "left"),
        (4.0, "static"),
        (7.0, "left"),
        (8.0, "static"),
    ];
    assert_eq!(changes.len(), truth.len(), "{labels:?}");
    for ((at, label), (want_at, want)) in changes.iter().zip(truth) {
        // A change shows in the first window that reaches into the new stretch at the
        // earliest, in the first one inside it at the latest.
        assert!(
            label == want && (at - want_at).abs() <= 0.5 + 1e-9,
            "{changes:?} vs {truth:?}: {labels:?}"
        );
    }

    let csv = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("window,start_s,end_s,label_1,probability_1,label_2,probability_2")
    );
    assert_eq!(rows.count(), 19);
    let png = std::fs::read(out.join("timeline.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    // Refusals: a span without a unit, two videos, a frame folder.
    let ckpt = run_dir.join("last.safetensors");
    let timeline = |extra: &[&str]| {
        let mut a = vec![
            "predict",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--timeline",
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    let o = timeline(&["--window", "2", video.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("give a unit"), "{err}");
    let v = video.to_str().unwrap();
    fails_in_one_line(&timeline(&[v, v]), "--timeline takes one video, 2 given");
    fails_in_one_line(&timeline(&[d.to_str().unwrap()]), "needs a video file");
}

/// Parses the JSON lines of `amflow watch`.
fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Predictions in order (windows and source times rising), with lag under `max_lag` s.
fn in_order_with_bounded_lag(lines: &[serde_json::Value], max_lag: f64) {
    for pair in lines.windows(2) {
        assert!(
            pair[0]["window"].as_u64() < pair[1]["window"].as_u64(),
            "{pair:?}"
        );
        assert!(pair[0]["source_end_s"].as_f64() < pair[1]["source_end_s"].as_f64());
    }
    for l in lines {
        let lag = l["lag_s"].as_f64().unwrap();
        assert!((0.0..max_lag).contains(&lag), "{l}");
        // Frame 0 may come late (the demuxer's probing), never later frames.
        assert!(l["behind_s"].as_f64().unwrap() < max_lag, "{l}");
        assert_eq!(l["top"].as_array().unwrap().len(), 3, "{l}");
    }
}

/// `amflow watch` on live sources made by the `ffmpeg` tool at real-time rate (`-re`): a pipe
/// into stdin and UDP on loopback give predictions in order with bounded lag; a source that
/// stops, a stdin that never sends anything and garbage give a one-line error, never a hang;
/// Ctrl-C ends a watch cleanly.
#[test]
#[cfg_attr(
    missing_ffmpeg_tool,
    ignore = "needs the ffmpeg tool (scripts/setup.sh)"
)]
fn watch_follows_a_pipe_and_udp_and_reports_stalled_or_bad_sources() {
    let d = dir("watch");
    let config = write_config(&d);
    let run_dir = d.join("run");
    ok(&train(&config, &run_dir));
    let ckpt = run_dir.join("last.safetensors");
    let watch = |source: &str, stall: &str| {
        let mut c = bin();
        c.args([
            "watch",
            source,
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--window",
            "1s",
            "--every",
            "0.5s",
            "--stall-timeout",
            stall,
        ]);
        c
    };
    let feed = |out: &str| {
        let mut c = Command::new("ffmpeg");
        c.args([
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=10:duration=3",
            "-c:v",
            "mpeg4",
            "-f",
            "mpegts",
            out,
        ]);
        c
    };

    // A pipe: ffmpeg's stdout into amflow's stdin; the source ends with the stream.
    let mut ffmpeg = feed("-").stdout(Stdio::piped()).spawn().unwrap();
    let o = watch("-", "2")
        .stdin(ffmpeg.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(ffmpeg.wait().unwrap().success());
    ok(&o);
    let lines = json_lines(&o.stdout);
    // 3 s at 10 fps: 1 s windows every 0.5 s end at 1.0, 1.5, ..., 3.0.
    assert!((3..=5).contains(&lines.len()), "{lines:?}");
    in_order_with_bounded_lag(&lines, 1.0);
    assert!(lines.iter().all(|l| l["source"] == "-"));

    // UDP on loopback: the stream stops when ffmpeg is done, which is a stall.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("udp://127.0.0.1:{port}");
    let watcher = watch(&url, "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    assert!(feed(&url).status().unwrap().success());
    let o = watcher.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    let lines = json_lines(&o.stdout);
    assert!(
        lines.len() >= 2,
        "{lines:?} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    in_order_with_bounded_lag(&lines, 1.0);
    fails_in_one_line(&o, "no frame for 2.0 s");

    // A stdin that is open but silent: the stall error after the timeout, not a hang.
    let mut silent = watch("-", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let keep_open = silent.stdin.take();
    let started = Instant::now();
    let o = silent.wait_with_output().unwrap();
    drop(keep_open);
    assert!(started.elapsed() < Duration::from_secs(10));
    fails_in_one_line(&o, "no frame for 2.0 s after frame 0");

    // Ctrl-C (SIGINT) while waiting on a silent source ends cleanly, well before the timeout.
    let mut waiting = watch("-", "60")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let keep_open = waiting.stdin.take();
    // Past start-up (checkpoint loaded, handler installed).
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &waiting.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = waiting.wait_with_output().unwrap();
    drop(keep_open);
    assert!(started.elapsed() < Duration::from_secs(5));
    ok(&o);
    assert!(o.stdout.is_empty());

    // Garbage on stdin.
    let mut junk = watch("-", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rng = amflow_video::SplitMix64::new(3);
    let bytes: Vec<u8> = (0..65536).map(|_| rng.next_u64() as u8).collect();
    {
        use std::io::Write;
        let mut stdin = junk.stdin.take().unwrap();
        // The reader may give up before taking everything.
        let _ = stdin.write_all(&bytes);
    }
    let o = junk.wait_with_output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        // FFmpeg's name for stdin.
        err.starts_with("error: pipe:0: ") && err.lines().count() == 1 && !err.contains("panicked"),
        "{err}"
    );

    // Reconnecting: a source that fails is opened again `--reconnect` times, then the error
    // says how many tries were made; stdin cannot be reopened.
    let gone = d.join("gone.ts");
    let o = watch(gone.to_str().unwrap(), "2")
        .args(["--reconnect", "2", "--reconnect-delay", "0.05"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ")
            && last.contains("after 2 reconnects")
            && last.contains("gone.ts"),
        "{err}"
    );
    assert_eq!(err.matches("reconnecting in").count(), 2, "{err}");
    let o = watch("-", "2").args(["--reconnect", "1"]).output().unwrap();
    fails_in_one_line(&o, "cannot reopen stdin");
}
