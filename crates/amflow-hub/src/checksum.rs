//! Checking a downloaded file against the checksum the Hub announces in its headers: files in
//! Git LFS (weights) carry their SHA-256 in `X-Linked-Etag`, small files kept in Git
//! (`config.json`) their Git blob hash, SHA-1 of `blob <length>\0<contents>`, in `ETag`.

use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A checksum the Hub announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-256 of the contents, lower-case hex.
    Sha256(String),
    /// Git blob SHA-1, lower-case hex.
    GitSha1(String),
}

impl Checksum {
    /// The checksum an etag states: 64 hex digits are SHA-256, 40 a Git blob hash; any other
    /// etag (a mirror's own) states none.
    pub fn from_etag(etag: &str) -> Option<Self> {
        let etag = etag.trim().trim_start_matches("W/").trim_matches('"');
        let hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
        match etag.len() {
            64 if hex => Some(Self::Sha256(etag.to_ascii_lowercase())),
            40 if hex => Some(Self::GitSha1(etag.to_ascii_lowercase())),
            _ => None,
        }
    }

    /// The algorithm's name.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Sha256(_) => "sha256",
            Self::GitSha1(_) => "git-sha1",
        }
    }

    /// The announced value.
    pub fn expected(&self) -> &str {
        match self {
            Self::Sha256(h) | Self::GitSha1(h) => h,
        }
    }

    /// The same algorithm's value for the file at `path`.
    pub fn compute(&self, path: &Path) -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        match self {
            Self::Sha256(_) => hash_reader(Sha256::new(), &mut file),
            Self::GitSha1(_) => {
                let len = file.metadata()?.len();
                let mut hasher = Sha1::new();
                hasher.update(format!("blob {len}\0").as_bytes());
                hash_reader(hasher, &mut file)
            }
        }
    }
}

fn hash_reader<D: Digest>(mut hasher: D, reader: &mut impl Read) -> std::io::Result<String> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_sha256sum_and_git_hash_object() {
        let path = std::env::temp_dir().join(format!("amflow-hub-sum-{}", std::process::id()));
        std::fs::write(&path, "hello\n").unwrap();
        // `sha256sum` and `git hash-object` of "hello\n".
        let sha256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let git = "ce013625030ba8dba906f756967f9e9ca394464a";
        let s = Checksum::from_etag(&format!("\"{sha256}\"")).unwrap();
        assert_eq!(s, Checksum::Sha256(sha256.into()));
        assert_eq!(s.compute(&path).unwrap(), sha256);
        let g = Checksum::from_etag(&format!("W/\"{git}\"")).unwrap();
        assert_eq!(g.compute(&path).unwrap(), git);
        assert_eq!(Checksum::from_etag("\"abc-123\""), None);
        std::fs::remove_file(&path).unwrap();
    }
}
