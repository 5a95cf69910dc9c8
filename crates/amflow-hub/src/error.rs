//! [`HubError`]: every way fetching a file by name can fail, each one line that says what to do.

use std::path::PathBuf;

/// A failed Hub lookup or download.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// `HF_HUB_OFFLINE` is set and the file is not in the cache.
    #[error(
        "{at} is not in the cache {cache} and HF_HUB_OFFLINE is set \
         (download it once online, or unset HF_HUB_OFFLINE)"
    )]
    NotCached {
        /// The file asked for.
        at: Box<FileAt>,
        /// The cache folder searched.
        cache: PathBuf,
    },
    /// The Hub answered 404.
    #[error(
        "{at} not found at {endpoint} (404): no such repository, revision \
         or file"
    )]
    NotFound {
        /// The file asked for.
        at: Box<FileAt>,
        /// The Hub asked.
        endpoint: String,
    },
    /// The Hub answered 401 or 403.
    #[error(
        "{repo}: access refused ({status}){hint}", hint = if *.has_token {
            ": the token (HF_TOKEN or the token file) has no access to this repository; \
             accept its conditions on the Hub"
        } else {
            ": the repository is gated or private; set HF_TOKEN to a token with access"
        }
    )]
    Unauthorized {
        /// Repository id.
        repo: String,
        /// 401 or 403.
        status: u16,
        /// Whether a token was sent.
        has_token: bool,
    },
    /// The Hub could not be reached and the file is not cached.
    #[error(
        "{at}: cannot reach {endpoint} ({reason}) and the file is not in the cache \
         {cache}"
    )]
    Unreachable {
        /// The file asked for.
        at: Box<FileAt>,
        /// The Hub asked.
        endpoint: String,
        /// What failed.
        reason: String,
        /// The cache folder searched.
        cache: PathBuf,
    },
    /// A downloaded file does not hash to the checksum the Hub announced; it was removed.
    #[error(
        "{at} downloaded corrupt ({algorithm} {found}, the Hub announced \
         {expected}); the file was removed, run again to download it anew"
    )]
    Checksum {
        /// The file asked for.
        at: Box<FileAt>,
        /// `sha256` (LFS files) or `git-sha1` (small files).
        algorithm: &'static str,
        /// The announced checksum.
        expected: String,
        /// The computed one.
        found: String,
    },
    /// Any other failure of the Hub protocol (an HTTP error, an unexpected answer).
    #[error("{at}: {reason}")]
    Protocol {
        /// The file asked for.
        at: Box<FileAt>,
        /// What happened.
        reason: String,
    },
    /// A file of the cache could not be read or removed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP client could not be set up.
    #[error("cannot start the Hub client: {0}")]
    Client(String),
    /// A repository id or revision that cannot name anything.
    #[error("`{0}` is not a Hub repository id (expected `org/name` or `name`)")]
    BadRepoId(String),
}

/// A file of a repository at a revision, as errors name it: `org/name@revision: `file``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAt {
    /// Repository id.
    pub repo: String,
    /// Revision asked for.
    pub revision: String,
    /// File name in the repository.
    pub file: String,
}

impl FileAt {
    /// `file` of `repo` at `revision`, boxed for an error.
    pub fn boxed(repo: &str, revision: &str, file: &str) -> Box<Self> {
        Box::new(Self {
            repo: repo.into(),
            revision: revision.into(),
            file: file.into(),
        })
    }
}

impl std::fmt::Display for FileAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}: `{}`", self.repo, self.revision, self.file)
    }
}

/// Results of this crate.
pub type Result<T, E = HubError> = std::result::Result<T, E>;
