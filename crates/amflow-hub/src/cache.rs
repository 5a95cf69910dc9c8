//! The local cache in the layout of the Python `huggingface_hub` library
//! (<https://huggingface.co/docs/huggingface_hub/guides/manage-cache>):
//!
//! ```text
//! <cache>/models--<org>--<name>/
//!     blobs/<etag>                     file contents, named by their checksum
//!     refs/<revision>                  the commit a branch or tag pointed at when last asked
//!     snapshots/<commit>/<file>        a relative symlink to ../../blobs/<etag>
//! ```
//!
//! hf-hub writes this layout when it downloads; this module finds files in it without going
//! online, and removes a file whose contents failed their checksum.

use std::path::{Path, PathBuf};

use crate::error::{HubError, Result};

/// Whether `revision` is a full commit hash (snapshots are named by those).
pub fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One model repository's folder of the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    dir: PathBuf,
}

impl RepoCache {
    /// The folder of model repository `repo_id` under `cache_dir`.
    pub fn new(cache_dir: &Path, repo_id: &str) -> Self {
        Self {
            dir: cache_dir.join(format!("models--{}", repo_id.replace('/', "--"))),
        }
    }

    /// The repository's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The commit `revision` names locally: itself for a commit hash, else what
    /// `refs/<revision>` recorded.
    pub fn commit_of(&self, revision: &str) -> Option<String> {
        if is_commit_hash(revision) {
            return Some(revision.to_ascii_lowercase());
        }
        let text = std::fs::read_to_string(self.dir.join("refs").join(revision)).ok()?;
        let commit = text.trim();
        is_commit_hash(commit).then(|| commit.to_string())
    }

    /// Where `file` of `commit` is (whether or not it exists).
    pub fn snapshot_path(&self, commit: &str, file: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit).join(file)
    }

    /// The cached `file` at `revision` and the commit it belongs to.
    pub fn lookup(&self, revision: &str, file: &str) -> Option<(PathBuf, String)> {
        let commit = self.commit_of(revision)?;
        let path = self.snapshot_path(&commit, file);
        // `exists` follows the symlink: a link whose blob is gone is no hit.
        path.exists().then_some((path, commit))
    }

    /// Records that `revision` (a branch or tag) now points at `commit`.
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if is_commit_hash(revision) {
            return Ok(());
        }
        let path = self.dir.join("refs").join(revision);
        let io = |source| HubError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, commit).map_err(io)
    }

    /// Removes `file` of `commit`: its snapshot link and the blob it points to.
    pub fn remove(&self, commit: &str, file: &str) -> Result<()> {
        let link = self.snapshot_path(commit, file);
        let blob = std::fs::canonicalize(&link).ok();
        for path in blob.iter().chain(std::iter::once(&link)) {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(HubError::Io {
                        path: path.clone(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_follow_refs_and_snapshots() {
        let root = std::env::temp_dir().join(format!("amflow-hub-cache-{}", std::process::id()));
        let cache = RepoCache::new(&root, "org/model");
        assert!(cache.dir().ends_with("models--org--model"));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert!(cache.lookup("main", "config.json").is_none());
        cache.write_ref("main", commit).unwrap();
        assert_eq!(cache.commit_of("main").as_deref(), Some(commit));
        assert!(cache.lookup("main", "config.json").is_none());
        let blobs = cache.dir().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("abc"), "{}").unwrap();
        let link = cache.snapshot_path(commit, "config.json");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("../../blobs/abc", &link).unwrap();
        assert_eq!(
            cache.lookup("main", "config.json"),
            Some((link.clone(), commit.to_string()))
        );
        assert_eq!(
            cache.lookup(commit, "config.json"),
            Some((link.clone(), commit.to_string()))
        );
        cache.remove(commit, "config.json").unwrap();
        assert!(!blobs.join("abc").exists() && cache.lookup("main", "config.json").is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
