//! The ablation study in miniature (Table 4 and the discussion of the paper, on the synthetic
//! motion data): every variant of a base training config trained with the same budget and
//! seeds, then summarised as mean ± sample standard deviation over seeds.
//!
//! An [`AblationConfig`] is a base [`TrainConfig`], a list of seeds and a list of
//! [`Variant`]s, each a set of `key=value` overrides of the base (the syntax of
//! `amflow train --set`). For seed `s` a run also sets `seed = s` (data order, augmentation),
//! `model.seed = s` (initialisation of the additions) and, for random backbone weights, their
//! seed to `s` (from-scratch runs start from different random backbones).
//!
//! Runs live in `OUT/runs/<variant>/seed-<s>/` (ordinary run directories). A finished run is
//! not trained again and an interrupted one resumes, so the whole study survives a kill.
//! The presets: [`AblationPreset::Mini`] (the published table, 3 seeds, under an hour on a
//! 2-core CPU) and [`AblationPreset::Quick`] (a smoke test, one seed, minutes).

use std::path::{Path, PathBuf};

use amflow::config::BackboneWeights;
use serde::{Deserialize, Serialize};

use crate::config::{apply_override, DataConfig, ModelChoice, OptimConfig, TrainConfig};
use crate::error::{Result, TrainError};
use crate::trainer::{files, EpochRecord};

/// One variant of the study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Short name (a directory name: letters, digits, `-`, `_`).
    pub name: String,
    /// Which claim of the paper it bears on (e.g. "b: AM flow vs none").
    #[serde(default)]
    pub claim: String,
    /// Overrides of the base config (`key=value`, as `amflow train --set`).
    #[serde(default)]
    pub set: Vec<String>,
}

/// The study: a base run, its variants and the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AblationConfig {
    /// Seeds; every variant runs once per seed.
    pub seeds: Vec<u64>,
    /// The base run (its model is resolved and inlined so that overrides can reach it).
    pub base: TrainConfig,
    /// The variants.
    pub variants: Vec<Variant>,
}

/// The built-in studies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AblationPreset {
    /// Nine variants × 3 seeds on the synthetic motion data with the embedded backbone.
    Mini,
    /// The same variants with one seed and a fraction of the data and epochs.
    Quick,
}

impl AblationPreset {
    /// Every preset.
    pub const ALL: [AblationPreset; 2] = [AblationPreset::Mini, AblationPreset::Quick];

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            AblationPreset::Mini => "mini",
            AblationPreset::Quick => "quick",
        }
    }

    /// The preset of this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The study.
    pub fn config(self) -> Result<AblationConfig> {
        let (seeds, train, val, epochs) = match self {
            AblationPreset::Mini => (vec![0, 1, 2], 880, 330, 3),
            AblationPreset::Quick => (vec![0], 330, 132, 3),
        };
        let mut base = TrainConfig::embedded_default();
        if let DataConfig::Synthetic {
            train: t,
            val_samples,
        } = &mut base.data
        {
            t.num_samples = train;
            *val_samples = val;
        }
        base.optim = OptimConfig {
            epochs,
            warmup_epochs: 0.5,
            ..base.optim.clone()
        };
        Ok(AblationConfig {
            seeds,
            base: base.resolved()?,
            variants: standard_variants(),
        })
    }
}

fn variant(name: &str, claim: &str, set: &[&str]) -> Variant {
    Variant {
        name: name.into(),
        claim: claim.into(),
        set: set.iter().map(|s| (*s).to_string()).collect(),
    }
}

/// The variants of the paper's claims: (a) full AM Flow; (b) without AM flow; (c) vanilla vs
/// aligned AM flow with and without camera motion; (d) transformer vs TCN vs LSTM temporal
/// units; (e) the same architecture trained from scratch; (f) the frame-only baseline.
pub fn standard_variants() -> Vec<Variant> {
    const CAMERA: [&str; 2] = [
        "data.synthetic.train.camera.pan=0.04",
        "data.synthetic.train.camera.jitter=0.01",
    ];
    // The aligning encoder's width of the synthetic-small model (48 = 12 heads of 4) set with
    // the mode, because only aligned AM flow has an aligning encoder's settings.
    const ALIGNED: &str = "model.am_flow={mode=\"aligned\", dim=48}";
    vec![
        variant(
            "am-flow",
            "a: full AM Flow (vanilla AM flow, transformer TPMs)",
            &[],
        ),
        variant(
            "no-am-flow",
            "b: adapters + TPMs without AM flow",
            &["model.am_flow.mode=\"off\""],
        ),
        variant("aligned", "c: aligned AM flow, static camera", &[ALIGNED]),
        variant(
            "camera-vanilla",
            "c: vanilla AM flow, moving camera",
            &CAMERA,
        ),
        variant(
            "camera-aligned",
            "c: aligned AM flow, moving camera",
            &[CAMERA[0], CAMERA[1], ALIGNED],
        ),
        variant(
            "tcn",
            "d: TCN temporal units",
            &["model.tpm={kind=\"tcn\"}"],
        ),
        variant(
            "lstm",
            "d: LSTM temporal units",
            &["model.tpm={kind=\"lstm\"}"],
        ),
        variant(
            "scratch",
            "e: same architecture from scratch (random backbone, trained)",
            &[
                "model.backbone.trainable=true",
                "model.backbone.weights={random={seed=0}}",
            ],
        ),
        variant(
            "frame-only",
            "f: frame-only baseline (no AM flow, no temporal units)",
            &[
                "model.temporal_blocks=\"none\"",
                "model.am_flow.mode=\"off\"",
            ],
        ),
    ]
}

impl AblationConfig {
    /// Reads a study from TOML.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Self =
            toml::from_str(text).map_err(|e| TrainError::Config(e.message().replace('\n', " ")))?;
        config.validate()?;
        Ok(config)
    }

    /// The study as TOML (what `OUT/ablation.toml` records).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("an ablation config serialises to TOML")
    }

    /// Checks names and that every run's config builds.
    pub fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() || self.variants.is_empty() {
            return Err(TrainError::Config(
                "an ablation needs at least one seed and one variant".into(),
            ));
        }
        for (i, v) in self.variants.iter().enumerate() {
            let ok = !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(TrainError::Config(format!(
                    "variant name `{}` must be letters, digits, `-` or `_`",
                    v.name
                )));
            }
            if self.variants[..i].iter().any(|w| w.name == v.name) {
                return Err(TrainError::Config(format!(
                    "variant `{}` is listed twice",
                    v.name
                )));
            }
            self.run_config(v, self.seeds[0])?;
        }
        Ok(())
    }

    /// The training config of `variant` with `seed`.
    pub fn run_config(&self, variant: &Variant, seed: u64) -> Result<TrainConfig> {
        let base = self.base.resolved()?;
        let mut value: toml::Value = toml::from_str(&base.to_toml())
            .map_err(|e| TrainError::Config(e.message().replace('\n', " ")))?;
        for o in &variant.set {
            apply_override(&mut value, o)
                .map_err(|e| TrainError::Config(format!("variant `{}`: {e}", variant.name)))?;
        }
        let mut config: TrainConfig = value.try_into().map_err(|e: toml::de::Error| {
            TrainError::Config(format!(
                "variant `{}`: {}",
                variant.name,
                e.message().replace('\n', " ")
            ))
        })?;
        let mut model = config.model.resolve(None)?;
        model.seed = seed;
        if let BackboneWeights::Random { seed: s } = &mut model.backbone.weights {
            *s = seed;
        }
        model
            .validate()
            .map_err(|e| TrainError::Config(format!("variant `{}`: {e}", variant.name)))?;
        config.model = ModelChoice::Inline(Box::new(model));
        config.seed = seed;
        Ok(config)
    }

    /// Number of runs.
    pub fn num_runs(&self) -> usize {
        self.seeds.len() * self.variants.len()
    }
}

/// One finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The variant's name.
    pub variant: String,
    /// The seed.
    pub seed: u64,
    /// Its run directory.
    pub run_dir: PathBuf,
    /// Every epoch.
    pub history: Vec<EpochRecord>,
    /// Training and validation time, summed over epochs (seconds).
    pub seconds: f64,
}

/// Mean and sample standard deviation (0 for one value).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (`n - 1` in the denominator).
    pub std: f64,
}

impl MeanStd {
    /// Of `values` (NaN for none).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        if values.is_empty() {
            return Self {
                mean: f64::NAN,
                std: f64::NAN,
            };
        }
        let mean = values.iter().sum::<f64>() / n;
        let std = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, std }
    }
}

/// A variant's results over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    /// Name.
    pub name: String,
    /// The claim it bears on.
    pub claim: String,
    /// Runs (seeds).
    pub runs: usize,
    /// Final-epoch validation top-1.
    pub top1: MeanStd,
    /// Final-epoch validation mean class accuracy.
    pub mean_class_accuracy: MeanStd,
    /// Validation top-1 after the first epoch (convergence speed).
    pub first_epoch_top1: MeanStd,
    /// Per epoch, the validation top-1 over seeds (the convergence curve).
    pub curve: Vec<MeanStd>,
    /// Seconds per run.
    pub seconds: MeanStd,
}

/// Summarises the runs of each variant, in the config's order.
pub fn summarise(config: &AblationConfig, results: &[RunResult]) -> Vec<VariantSummary> {
    config
        .variants
        .iter()
        .map(|v| {
            let runs: Vec<&RunResult> = results.iter().filter(|r| r.variant == v.name).collect();
            let last = |f: fn(&EpochRecord) -> f64| -> Vec<f64> {
                runs.iter()
                    .filter_map(|r| r.history.last().map(f))
                    .collect()
            };
            let epochs = runs.iter().map(|r| r.history.len()).min().unwrap_or(0);
            let curve = (0..epochs)
                .map(|e| {
                    MeanStd::of(
                        &runs
                            .iter()
                            .map(|r| r.history[e].val_top1)
                            .collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>();
            VariantSummary {
                name: v.name.clone(),
                claim: v.claim.clone(),
                runs: runs.len(),
                top1: MeanStd::of(&last(|r| r.val_top1)),
                mean_class_accuracy: MeanStd::of(&last(|r| r.val_mean_class_accuracy)),
                first_epoch_top1: curve.first().copied().unwrap_or(MeanStd::of(&[])),
                curve,
                seconds: MeanStd::of(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>()),
            }
        })
        .collect()
}

/// The summary as a Markdown table (accuracies in percent).
pub fn markdown_table(summaries: &[VariantSummary]) -> String {
    let pct = |m: &MeanStd| format!("{:.1} ± {:.1}", 100.0 * m.mean, 100.0 * m.std);
    let mut s = String::from(
        "| variant | claim | runs | val top-1 (%) | val mean class acc. (%) | top-1 after epoch 1 (%) | s / run |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for v in summaries {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} |\n",
            v.name,
            v.claim,
            v.runs,
            pct(&v.top1),
            pct(&v.mean_class_accuracy),
            pct(&v.first_epoch_top1),
            v.seconds.mean
        ));
    }
    s
}

/// What a study reports while it runs.
pub trait AblationObserver {
    /// A run starts or resumes (`index` of `total`, from 0); not called for finished runs.
    fn run_start(&mut self, _variant: &Variant, _seed: u64, _index: usize, _total: usize) {}
    /// Trains one run in `run_dir` (or resumes it when `resume`) and returns its history.
    fn train(
        &mut self,
        config: &TrainConfig,
        run_dir: &Path,
        resume: bool,
    ) -> Result<Vec<EpochRecord>>;
    /// A run finished (or was found finished).
    fn run_end(&mut self, _result: &RunResult) {}
}

/// The directory of a run of the study in `out`.
pub fn run_dir(out: &Path, variant: &str, seed: u64) -> PathBuf {
    out.join("runs").join(variant).join(format!("seed-{seed}"))
}

fn finished_history(dir: &Path, epochs: u64) -> Option<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(dir.join(files::METRICS)).ok()?;
    let history: Vec<EpochRecord> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    (history.len() as u64 == epochs).then_some(history)
}

/// Runs every variant × seed of `config` under `out` (finished runs are reused, interrupted
/// ones resumed) and returns the results in order. `ablation.toml` in `out` records the study.
pub fn run(
    config: &AblationConfig,
    out: &Path,
    observer: &mut dyn AblationObserver,
) -> Result<Vec<RunResult>> {
    config.validate()?;
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    crate::trainer::write_text(&out.join("ablation.toml"), &config.to_toml())?;
    let total = config.num_runs();
    let mut results = Vec::with_capacity(total);
    let mut index = 0;
    for v in &config.variants {
        for &seed in &config.seeds {
            let run_config = config.run_config(v, seed)?;
            let dir = run_dir(out, &v.name, seed);
            let epochs = run_config.optim.epochs;
            let history = match finished_history(&dir, epochs) {
                Some(h) => h,
                None => {
                    observer.run_start(v, seed, index, total);
                    let resume = dir.join(files::STATE).exists();
                    observer.train(&run_config, &dir, resume)?
                }
            };
            let seconds = history.iter().map(|r| r.seconds).sum::<f64>();
            let result = RunResult {
                variant: v.name.clone(),
                seed,
                run_dir: dir,
                history,
                seconds,
            };
            observer.run_end(&result);
            results.push(result);
            index += 1;
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_build_every_run() {
        for p in AblationPreset::ALL {
            let c = p.config().unwrap();
            c.validate().unwrap();
            let back = AblationConfig::from_toml(&c.to_toml()).unwrap();
            assert_eq!(back, c);
        }
        let c = AblationPreset::Mini.config().unwrap();
        assert_eq!(c.num_runs(), 27);
        let scratch = c
            .run_config(c.variants.iter().find(|v| v.name == "scratch").unwrap(), 2)
            .unwrap();
        let m = scratch.model.resolve(None).unwrap();
        assert!(m.backbone.trainable);
        assert_eq!(m.backbone.weights, BackboneWeights::Random { seed: 2 });
        assert_eq!((m.seed, scratch.seed), (2, 2));
    }

    #[test]
    fn bad_variants_are_errors_naming_them() {
        let mut c = AblationPreset::Quick.config().unwrap();
        c.variants[0].set.push("model.nonsense=1".into());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("am-flow"), "{e}");
        let mut c = AblationPreset::Quick.config().unwrap();
        c.variants[1].name = "am-flow".into();
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn mean_and_sample_std() {
        let m = MeanStd::of(&[1.0, 2.0, 3.0]);
        assert_eq!(m.mean, 2.0);
        assert!((m.std - 1.0).abs() < 1e-12);
        assert_eq!(MeanStd::of(&[5.0]).std, 0.0);
        assert!(MeanStd::of(&[]).mean.is_nan());
    }
}
