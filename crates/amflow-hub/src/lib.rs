//! Model files by name from the Hugging Face Hub.
//!
//! [`Hub::fetch`] turns `(repository, revision, file)` into a local path and the commit it
//! belongs to, through the cache that the Python `huggingface_hub` library uses too
//! ([`cache`]), so files downloaded by either serve both:
//!
//! - offline (`HF_HUB_OFFLINE=1`): the cache only; a miss is [`HubError::NotCached`];
//! - a commit hash is immutable: a cached file of that commit is used without going online;
//! - a branch or tag (default `main`) is asked of the Hub for its current commit, as
//!   `huggingface_hub` does; a cached file of that commit is used, else it is downloaded (with
//!   a progress bar, resumable: hf-hub keeps `blobs/<etag>.part` and continues it with an HTTP
//!   range request; a partial file is never returned) and checked against the checksum the Hub
//!   announced ([`checksum`]); a corrupt file is removed and is an error;
//! - when the Hub cannot be reached, the commit the cache last saw for the branch is used, with
//!   a warning, as `huggingface_hub` does.
//!
//! The protocol (metadata request, download, cache writes) is hf-hub's; this crate adds the
//! environment ([`HubSettings`]), the checks and one-line errors ([`HubError`]).

pub mod cache;
pub mod checksum;
mod error;
mod settings;

use std::path::PathBuf;

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};

pub use cache::RepoCache;
pub use checksum::Checksum;
pub use error::{FileAt, HubError, Result};
pub use settings::{HubSettings, DEFAULT_ENDPOINT};

/// The default revision.
pub const DEFAULT_REVISION: &str = "main";

/// A file fetched by [`Hub::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The file in the cache (`snapshots/<commit>/<file>`).
    pub path: PathBuf,
    /// The commit it belongs to (40 hex digits).
    pub commit: String,
    /// Whether this call downloaded it (else it was in the cache).
    pub downloaded: bool,
}

/// A Hub client over one cache.
#[derive(Debug)]
pub struct Hub {
    settings: HubSettings,
    api: Api,
}

/// What a failed request means for the caller.
enum Failure {
    /// The Hub was not reached: the cache may still serve.
    Unreachable(String),
    /// The Hub answered: this is final.
    Final(HubError),
}

impl Hub {
    /// A client with `settings`.
    pub fn new(settings: HubSettings) -> Result<Self> {
        let api = ApiBuilder::new()
            .with_endpoint(settings.endpoint.clone())
            .with_cache_dir(settings.cache_dir.clone())
            .with_token(settings.token.clone())
            .with_progress(settings.progress)
            .with_user_agent("amflow", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| HubError::Client(e.to_string()))?;
        Ok(Self { settings, api })
    }

    /// A client configured by the environment ([`HubSettings::from_env`]).
    pub fn from_env() -> Result<Self> {
        Self::new(HubSettings::from_env())
    }

    /// The settings in force.
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// `file` of model repository `repo` at `revision` (a branch, tag or commit hash).
    pub fn fetch(&self, repo: &str, revision: &str, file: &str) -> Result<Fetched> {
        check_repo_id(repo)?;
        let cache = RepoCache::new(&self.settings.cache_dir, repo);
        let cached = |path: PathBuf, commit: String| Fetched {
            path,
            commit,
            downloaded: false,
        };
        if self.settings.offline {
            return cache
                .lookup(revision, file)
                .map(|(p, c)| cached(p, c))
                .ok_or_else(|| HubError::NotCached {
                    at: FileAt::boxed(repo, revision, file),
                    cache: self.settings.cache_dir.clone(),
                });
        }
        if cache::is_commit_hash(revision) {
            if let Some((p, c)) = cache.lookup(revision, file) {
                return Ok(cached(p, c));
            }
        }
        let api_repo = self.api.repo(Repo::with_revision(
            repo.into(),
            RepoType::Model,
            revision.into(),
        ));
        let url = api_repo.url(file);
        let metadata = match self.api.metadata(&url) {
            Ok(m) => m,
            Err(e) => {
                return match self.classify(e, repo, revision, file) {
                    Failure::Final(e) => Err(e),
                    Failure::Unreachable(reason) => match cache.lookup(revision, file) {
                        Some((p, c)) => {
                            tracing::warn!(
                                "cannot reach {} ({reason}); using the cached {repo}@{revision} \
                                 (commit {c})",
                                self.settings.endpoint
                            );
                            Ok(cached(p, c))
                        }
                        None => Err(HubError::Unreachable {
                            at: FileAt::boxed(repo, revision, file),
                            endpoint: self.settings.endpoint.clone(),
                            reason,
                            cache: self.settings.cache_dir.clone(),
                        }),
                    },
                };
            }
        };
        let commit = metadata.commit_hash().to_string();
        let snapshot = cache.snapshot_path(&commit, file);
        if snapshot.exists() {
            cache.write_ref(revision, &commit)?;
            return Ok(cached(snapshot, commit));
        }
        tracing::info!(
            "downloading {repo}@{revision} {file} ({:.1} MB) from {}",
            metadata.size() as f64 / 1e6,
            self.settings.endpoint
        );
        let path =
            api_repo
                .download(file)
                .map_err(|e| match self.classify(e, repo, revision, file) {
                    Failure::Final(e) => e,
                    Failure::Unreachable(reason) => HubError::Protocol {
                        at: FileAt::boxed(repo, revision, file),
                        reason: format!(
                        "download interrupted ({reason}); the partial file is kept in the cache \
                         and the next run resumes it"
                    ),
                    },
                })?;
        // hf-hub names the snapshot folder by the commit of its own (second) metadata request.
        let commit = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .filter(|n| cache::is_commit_hash(n))
            .map_or(commit, str::to_string);
        match Checksum::from_etag(metadata.etag()) {
            Some(sum) => {
                let found = sum.compute(&path).map_err(|source| HubError::Io {
                    path: path.clone(),
                    source,
                })?;
                if found != sum.expected() {
                    cache.remove(&commit, file)?;
                    return Err(HubError::Checksum {
                        at: FileAt::boxed(repo, revision, file),
                        algorithm: sum.algorithm(),
                        expected: sum.expected().into(),
                        found,
                    });
                }
            }
            None => tracing::warn!(
                "{repo}@{revision} {file}: the etag `{}` states no checksum; not verified",
                metadata.etag()
            ),
        }
        Ok(Fetched {
            path,
            commit,
            downloaded: true,
        })
    }

    fn classify(&self, e: ApiError, repo: &str, revision: &str, file: &str) -> Failure {
        let protocol = |reason: String| {
            Failure::Final(HubError::Protocol {
                at: FileAt::boxed(repo, revision, file),
                reason,
            })
        };
        match e {
            ApiError::RequestError(e) => match *e {
                ureq::Error::StatusCode(status @ (401 | 403)) => {
                    Failure::Final(HubError::Unauthorized {
                        repo: repo.into(),
                        status,
                        has_token: self.settings.token.is_some(),
                    })
                }
                ureq::Error::StatusCode(404) => Failure::Final(HubError::NotFound {
                    at: FileAt::boxed(repo, revision, file),
                    endpoint: self.settings.endpoint.clone(),
                }),
                ureq::Error::StatusCode(s) => protocol(format!("the Hub answered HTTP {s}")),
                ureq::Error::Io(io) => Failure::Unreachable(io.to_string()),
                ureq::Error::Timeout(t) => Failure::Unreachable(format!("timeout: {t}")),
                ureq::Error::HostNotFound => Failure::Unreachable("host not found".into()),
                ureq::Error::ConnectionFailed => Failure::Unreachable("connection failed".into()),
                ureq::Error::BodyStalled => Failure::Unreachable("the download stalled".into()),
                other => protocol(other.to_string()),
            },
            ApiError::IoError(io) => Failure::Unreachable(io.to_string()),
            ApiError::TooManyRetries(inner) => self.classify(*inner, repo, revision, file),
            other => protocol(other.to_string()),
        }
    }
}

/// `org/name` or `name`, each part of letters, digits, `-`, `_` and `.`, not `..`.
fn check_repo_id(repo: &str) -> Result<()> {
    let parts: Vec<&str> = repo.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if parts.len() > 2 || !parts.iter().all(|p| part_ok(p)) {
        return Err(HubError::BadRepoId(repo.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_repo_id;

    #[test]
    fn repo_ids_are_checked() {
        for ok in [
            "facebook/dinov2-base",
            "gpt2",
            "openai/clip-vit-base-patch16",
            "a/b.c_d",
        ] {
            assert!(check_repo_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b/c", "../x", "a/..", "a b/c", "/x"] {
            assert!(check_repo_id(bad).is_err(), "{bad}");
        }
    }
}
