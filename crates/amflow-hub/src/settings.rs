//! [`HubSettings`]: where the Hub is, where its files are cached, which token to send and
//! whether to go online, read from the environment exactly as the Python `huggingface_hub`
//! library reads it (`huggingface_hub/constants.py`), so that both share one cache:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HF_ENDPOINT` | the Hub or a mirror | `https://huggingface.co` |
//! | `HF_HOME` | the root of Hugging Face's files | `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` |
//! | `HF_HUB_CACHE` (legacy `HUGGINGFACE_HUB_CACHE`) | the model cache | `$HF_HOME/hub` |
//! | `HF_TOKEN` | the access token (gated or private repositories) | the file `HF_TOKEN_PATH`, else `$HF_HOME/token` |
//! | `HF_HUB_OFFLINE` | `1`/`ON`/`YES`/`TRUE`: never go online, use the cache only | off |

use std::path::{Path, PathBuf};

/// The Hub's address when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How to reach the Hub and where its files live.
#[derive(Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The Hub (or mirror) base URL, without a trailing `/`.
    pub endpoint: String,
    /// The cache folder (`.../hub`, holding `models--org--name/`).
    pub cache_dir: PathBuf,
    /// The token sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// Use the cache only.
    pub offline: bool,
    /// Draw a progress bar on stderr while downloading (it hides itself when stderr is not a
    /// terminal).
    pub progress: bool,
}

impl std::fmt::Debug for HubSettings {
    /// The token is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSettings")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("offline", &self.offline)
            .field("progress", &self.progress)
            .finish()
    }
}

impl HubSettings {
    /// The settings the process environment gives.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The settings that the variables `var` returns give ([`HubSettings::from_env`] with
    /// the process environment; `HOME` is the user's home folder).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let home = || {
            var("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
        };
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home().join(".cache"))
                .join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN").or_else(|| {
            let path = var("HF_TOKEN_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| hf_home.join("token"));
            read_token_file(&path)
        });
        let endpoint = var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| is_true(&v));
        Self {
            endpoint,
            cache_dir,
            token,
            offline,
            progress: true,
        }
    }
}

/// `huggingface_hub`'s truthy values.
fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

fn read_token_file(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> HubSettings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubSettings::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let s = settings(&[("HOME", "/home/u")]);
        assert_eq!(s.endpoint, "https://huggingface.co");
        assert_eq!(s.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(s.token, None);
        assert!(!s.offline);
        let s = settings(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(s.cache_dir, PathBuf::from("/x/huggingface/hub"));
    }

    #[test]
    fn variables_override_in_huggingface_hub_order() {
        let s = settings(&[("HF_HOME", "/hf"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(s.cache_dir, PathBuf::from("/hf/hub"));
        let s = settings(&[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/legacy")]);
        assert_eq!(s.cache_dir, PathBuf::from("/legacy"));
        let s = settings(&[("HF_HUB_CACHE", "/c"), ("HUGGINGFACE_HUB_CACHE", "/legacy")]);
        assert_eq!(s.cache_dir, PathBuf::from("/c"));
        let s = settings(&[("HF_ENDPOINT", "http://127.0.0.1:9/")]);
        assert_eq!(s.endpoint, "http://127.0.0.1:9");
        for (v, want) in [("1", true), ("yes", true), ("True", true), ("0", false)] {
            assert_eq!(settings(&[("HF_HUB_OFFLINE", v)]).offline, want, "{v}");
        }
    }

    #[test]
    fn the_token_comes_from_the_variable_then_the_token_file() {
        let dir = std::env::temp_dir().join(format!("amflow-hub-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "hf_file\n").unwrap();
        let home = dir.to_str().unwrap();
        assert_eq!(
            settings(&[("HF_HOME", home)]).token.as_deref(),
            Some("hf_file")
        );
        assert_eq!(
            settings(&[("HF_HOME", home), ("HF_TOKEN", "hf_var")])
                .token
                .as_deref(),
            Some("hf_var")
        );
        let other = dir.join("other");
        std::fs::write(&other, "hf_other").unwrap();
        assert_eq!(
            settings(&[
                ("HF_HOME", home),
                ("HF_TOKEN_PATH", other.to_str().unwrap())
            ])
            .token
            .as_deref(),
            Some("hf_other")
        );
        // Never printed.
        let s = settings(&[("HF_TOKEN", "hf_secret")]);
        assert!(!format!("{s:?}").contains("hf_secret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
