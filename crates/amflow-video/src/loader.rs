//! The [`Loader`]: worker threads that read clips from a [`VideoDataset`] in parallel
//! and assemble 8-bit `(B, T, 3, H, W)` batches (normalised to `f32` on the model's device),
//! delivered in a deterministic order through a bounded window (at most
//! [`LoaderConfig::prefetch`] batches exist ahead of the consumer, finished or in progress,
//! so memory is bounded). Owns the bad-input policy:
//! broken samples are skipped (replaced by other samples, warned about by name, counted
//! in each batch and in the [`EpochSummary`]) or stop the epoch.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::dataset::VideoDataset;
use crate::error::{DataError, Result};
use crate::frame::Clip;
use crate::pixels::PixelNorm;
use amflow_rng::{derive_seed, SplitMix64};

/// What the loader does with a sample whose file cannot be used (see
/// [`DataError::is_bad_input`]). Configuration and programming errors always stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadInputPolicy {
    /// Warn (naming the file and the reason), count it, and fill its place with another
    /// sample drawn deterministically from the dataset.
    #[default]
    Skip,
    /// Yield the error and end the epoch.
    Fail,
}

/// Loader settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    /// Clips per batch.
    pub batch_size: usize,
    /// Worker threads (0: one per available core).
    pub workers: usize,
    /// Most batches held ahead of the consumer, finished or being built (0: twice the
    /// workers). Peak memory is about `prefetch x batch_size x T x 3 x H x W` bytes
    /// (one byte per value: batches are 8-bit).
    pub prefetch: usize,
    /// Shuffle the sample order each epoch (seeded by `seed` and the epoch number).
    pub shuffle: bool,
    /// Drop the last incomplete batch.
    pub drop_last: bool,
    /// Seed of shuffling and of every clip's random choices.
    pub seed: u64,
    /// Bad-input policy.
    pub bad_input: BadInputPolicy,
    /// Replacement samples tried for one broken sample before the batch is left a clip short.
    pub max_replacements: usize,
    /// What the logs call this loader (`train`, `validation`, ...).
    pub name: String,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 8,
            workers: 0,
            prefetch: 0,
            shuffle: true,
            drop_last: false,
            seed: 0,
            bad_input: BadInputPolicy::Skip,
            max_replacements: 4,
            name: "data".into(),
        }
    }
}

/// One skipped sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSample {
    /// Dataset index.
    pub index: usize,
    /// What the dataset calls it (the file path).
    pub source: String,
    /// Error kind ([`DataError::kind_name`]).
    pub kind: &'static str,
    /// Full error message.
    pub reason: String,
}

/// A batch for the model: 8-bit pixels and the normalisation the model side applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `B * T * 3 * H * W` pixel values, row-major.
    pub data: Vec<u8>,
    /// `[B, T, 3, H, W]`.
    pub shape: [usize; 5],
    /// Per-channel statistics every clip of the batch asks for.
    pub norm: PixelNorm,
    /// Action label per clip.
    pub labels: Vec<usize>,
    /// Appearance label per clip, when every clip has one (synthetic data).
    pub appearance_labels: Option<Vec<usize>>,
    /// Dataset index per clip.
    pub indices: Vec<usize>,
    /// Underlying sample per clip (test views of one video share it).
    pub samples: Vec<usize>,
    /// The batch's position in its epoch (0-based; a batch whose every sample failed is not
    /// delivered, so positions may jump).
    pub position: usize,
    /// Samples skipped while building this batch.
    pub skipped: Vec<SkippedSample>,
}

impl Batch {
    /// Clips in the batch (`B`).
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch has no clip.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// The `T * 3 * H * W` pixel values of clip `i`, or `None` past the end.
    pub fn clip(&self, i: usize) -> Option<&[u8]> {
        let per: usize = self.shape[1..].iter().product();
        self.data
            .get(i * per..(i + 1) * per)
            .filter(|_| i < self.shape[0])
    }

    /// The normalised `f32` values of the whole batch, computed on the host (the model's
    /// device normally does this: `amflow::pixels`).
    ///
    /// # Panics
    /// When `data` does not fill `shape` (as [`PixelNorm::normalize`]).
    pub fn normalized(&self) -> Vec<f32> {
        self.norm
            .normalize(&self.data, (self.shape[3] * self.shape[4]).max(1))
    }
}

/// Totals of one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochSummary {
    /// The loader's name ([`LoaderConfig::name`]).
    pub name: String,
    /// Epoch number (`None` for an unshuffled loader, whose every pass is the same).
    pub epoch: Option<u64>,
    /// Batches delivered.
    pub batches: usize,
    /// Clips delivered.
    pub clips: usize,
    /// Every skipped sample.
    pub skipped: Vec<SkippedSample>,
}

impl EpochSummary {
    /// Skipped samples per error kind.
    pub fn skipped_by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for s in &self.skipped {
            *m.entry(s.kind).or_insert(0) += 1;
        }
        m
    }
}

impl fmt::Display for EpochSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(epoch) = self.epoch {
            write!(f, " epoch {epoch}")?;
        }
        write!(
            f,
            ": {} batches, {} clips, {} skipped",
            self.batches,
            self.clips,
            self.skipped.len()
        )?;
        let kinds = self.skipped_by_kind();
        if !kinds.is_empty() {
            let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Batches clips of a dataset with worker threads.
pub struct Loader {
    dataset: Arc<dyn VideoDataset>,
    config: LoaderConfig,
}

impl fmt::Debug for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("len", &self.dataset.len())
            .field("config", &self.config)
            .finish()
    }
}

impl Loader {
    /// A loader over `dataset`.
    ///
    /// # Errors
    /// [`DataError::Config`] when `batch_size` is 0.
    pub fn new(dataset: Arc<dyn VideoDataset>, config: LoaderConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DataError::Config("batch_size must be at least 1".into()));
        }
        Ok(Loader { dataset, config })
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn VideoDataset> {
        &self.dataset
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.dataset.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    fn workers(&self) -> usize {
        if self.config.workers > 0 {
            self.config.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// Starts epoch `epoch`: the workers begin decoding at once. Iterate the returned
    /// [`Epoch`] for the batches; dropping it stops the workers.
    pub fn epoch(&self, epoch: u64) -> Epoch {
        self.epoch_from(epoch, 0)
    }

    /// Epoch `epoch` from the batch at position `first_batch` on: the same batches as
    /// [`Loader::epoch`] delivers from there (each batch is a function of the seed, the epoch
    /// and its position), without decoding the ones before it. A resumed run continues here.
    pub fn epoch_from(&self, epoch: u64, first_batch: usize) -> Epoch {
        let n = self.dataset.len();
        let mut order: Vec<usize> = (0..n).collect();
        if self.config.shuffle {
            SplitMix64::new(derive_seed(self.config.seed, &[epoch, 0x5AFF1E])).shuffle(&mut order);
        }
        let workers = self.workers().min(self.num_batches()).max(1);
        let prefetch = if self.config.prefetch > 0 {
            self.config.prefetch
        } else {
            2 * workers
        };
        let shared = Arc::new(Shared {
            dataset: self.dataset.clone(),
            config: self.config.clone(),
            order,
            epoch,
            n_batches: self.num_batches(),
            next: AtomicUsize::new(first_batch),
            stop: AtomicBool::new(false),
            consumed: Mutex::new(first_batch),
            window: Condvar::new(),
            prefetch,
        });
        let (tx, rx) = channel();
        let handles = (0..workers)
            .map(|_| {
                let (s, tx) = (shared.clone(), tx.clone());
                std::thread::spawn(move || worker(&s, &tx))
            })
            .collect();
        Epoch {
            shared,
            rx,
            handles,
            pending: BTreeMap::new(),
            next_batch: first_batch,
            finished: false,
            summary: EpochSummary {
                name: self.config.name.clone(),
                epoch: self.config.shuffle.then_some(epoch),
                ..EpochSummary::default()
            },
        }
    }
}

struct Shared {
    dataset: Arc<dyn VideoDataset>,
    config: LoaderConfig,
    order: Vec<usize>,
    epoch: u64,
    n_batches: usize,
    next: AtomicUsize,
    stop: AtomicBool,
    consumed: Mutex<usize>,
    window: Condvar,
    prefetch: usize,
}

type Message = (usize, Result<Option<Batch>>);

fn worker(s: &Shared, tx: &Sender<Message>) {
    loop {
        let b = s.next.fetch_add(1, Ordering::SeqCst);
        if b >= s.n_batches || s.stop.load(Ordering::SeqCst) {
            return;
        }
        {
            let Ok(mut consumed) = s.consumed.lock() else {
                return;
            };
            while b >= *consumed + s.prefetch && !s.stop.load(Ordering::SeqCst) {
                consumed = match s.window.wait(consumed) {
                    Ok(c) => c,
                    Err(_) => return,
                };
            }
        }
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let result = build_batch(s, b);
        if tx.send((b, result)).is_err() {
            return;
        }
    }
}

fn get_clip(s: &Shared, index: usize) -> Result<Clip> {
    let seed = derive_seed(s.config.seed, &[s.epoch, index as u64]);
    match std::panic::catch_unwind(AssertUnwindSafe(|| s.dataset.get(index, seed))) {
        Ok(r) => r,
        Err(_) => Err(DataError::Decode {
            path: s.dataset.describe(index).into(),
            reason: "reading the sample panicked".into(),
        }),
    }
}

fn build_batch(s: &Shared, b: usize) -> Result<Option<Batch>> {
    let n = s.order.len();
    let start = b * s.config.batch_size;
    let end = (start + s.config.batch_size).min(n);
    let mut clips: Vec<(usize, Clip)> = Vec::with_capacity(end - start);
    let mut skipped = Vec::new();
    for pos in start..end {
        let mut index = s.order[pos];
        let mut attempt = 0;
        loop {
            match get_clip(s, index) {
                Ok(c) => {
                    clips.push((index, c));
                    break;
                }
                Err(e) if e.is_bad_input() && s.config.bad_input == BadInputPolicy::Skip => {
                    let source = s.dataset.describe(index);
                    tracing::warn!(file = %source, kind = e.kind_name(), "skipping sample: {e}");
                    skipped.push(SkippedSample {
                        index,
                        source,
                        kind: e.kind_name(),
                        reason: e.to_string(),
                    });
                    attempt += 1;
                    if attempt > s.config.max_replacements {
                        break;
                    }
                    let r = derive_seed(s.config.seed, &[s.epoch, pos as u64, attempt as u64]);
                    index = (r % n as u64) as usize;
                }
                Err(e) => return Err(e),
            }
        }
    }
    let Some((_, first)) = clips.first() else {
        return Ok(Some(Batch {
            data: Vec::new(),
            shape: [0; 5],
            norm: PixelNorm::UNIT,
            labels: Vec::new(),
            appearance_labels: None,
            indices: Vec::new(),
            samples: Vec::new(),
            position: b,
            skipped,
        }));
    };
    let (shape, norm) = (first.shape, first.norm);
    let mut data = Vec::with_capacity(clips.len() * first.data.len());
    for (_, c) in &clips {
        if c.shape != shape {
            return Err(DataError::ShapeMismatch {
                expected: shape,
                got: c.shape,
            });
        }
        if c.norm != norm {
            return Err(DataError::Config(format!(
                "clips of one batch ask for different normalisations ({norm:?} and {:?})",
                c.norm
            )));
        }
        data.extend_from_slice(&c.data);
    }
    let appearance_labels = clips
        .iter()
        .map(|(_, c)| c.appearance_label)
        .collect::<Option<Vec<usize>>>();
    Ok(Some(Batch {
        data,
        shape: [clips.len(), shape[0], shape[1], shape[2], shape[3]],
        norm,
        labels: clips.iter().map(|(_, c)| c.label).collect(),
        appearance_labels,
        indices: clips.iter().map(|(i, _)| *i).collect(),
        samples: clips.iter().map(|(_, c)| c.sample).collect(),
        position: b,
        skipped,
    }))
}

/// The batches of one epoch, in order. Yields `Err` (then ends) on an error the policy
/// does not skip. A batch whose every sample and replacement failed is not yielded
/// (its skips still count in the summary).
pub struct Epoch {
    shared: Arc<Shared>,
    rx: Receiver<Message>,
    handles: Vec<JoinHandle<()>>,
    pending: BTreeMap<usize, Result<Option<Batch>>>,
    next_batch: usize,
    finished: bool,
    summary: EpochSummary,
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Epoch")
            .field("next_batch", &self.next_batch)
            .field("summary", &self.summary)
            .finish()
    }
}

impl Epoch {
    /// Totals so far (complete once the iterator has returned `None`).
    pub fn summary(&self) -> &EpochSummary {
        &self.summary
    }

    /// Batches in this epoch.
    pub fn num_batches(&self) -> usize {
        self.shared.n_batches
    }

    fn advance(&mut self) {
        self.next_batch += 1;
        if let Ok(mut c) = self.shared.consumed.lock() {
            *c = self.next_batch;
            self.shared.window.notify_all();
        }
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            if self.summary.skipped.is_empty() {
                tracing::info!("{}", self.summary);
            } else {
                tracing::warn!("{}", self.summary);
            }
        }
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Notify under the lock so a worker between its check and its wait cannot miss it.
        let guard = self.shared.consumed.lock();
        self.shared.window.notify_all();
        drop(guard);
    }
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        loop {
            if self.finished || self.next_batch >= self.shared.n_batches {
                self.finish();
                return None;
            }
            if let Some(r) = self.pending.remove(&self.next_batch) {
                self.advance();
                match r {
                    Ok(Some(batch)) => {
                        self.summary.skipped.extend(batch.skipped.iter().cloned());
                        if batch.labels.is_empty() {
                            continue;
                        }
                        self.summary.batches += 1;
                        self.summary.clips += batch.labels.len();
                        return Some(Ok(batch));
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        self.stop();
                        self.finish();
                        return Some(Err(e));
                    }
                }
            }
            match self.rx.recv() {
                Ok((b, r)) => {
                    self.pending.insert(b, r);
                }
                Err(_) => {
                    self.stop();
                    self.finish();
                    return Some(Err(DataError::Config(
                        "loader workers stopped before delivering every batch".into(),
                    )));
                }
            }
        }
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        self.stop();
        for h in self.handles.drain(..) {
            // A worker that panicked has already been accounted for as an error.
            let _ = h.join();
        }
    }
}
