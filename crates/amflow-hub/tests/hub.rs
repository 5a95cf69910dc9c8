//! `Hub::fetch` against a loopback stand-in of the Hub (`support/hub_server.rs`): download,
//! cache layout, cache hits with the server gone, offline mode, `HF_ENDPOINT`, checksums,
//! 404/401/403, and a resumed interrupted download.

mod support {
    pub mod hub_server;
}

use std::path::Path;

use amflow_hub::{Hub, HubError, HubSettings};
use support::hub_server::{sha256_hex, HubServer, ServedRepo};

const REPO: &str = "test-org/tiny-vit";

fn weights() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect()
}

fn repo() -> ServedRepo {
    ServedRepo::new(
        REPO,
        &[
            ("config.json", br#"{"model_type": "dinov2"}"#.to_vec()),
            ("model.safetensors", weights()),
        ],
    )
}

fn settings(endpoint: &str, cache: &Path) -> HubSettings {
    HubSettings {
        endpoint: endpoint.into(),
        cache_dir: cache.into(),
        token: None,
        offline: false,
        progress: false,
    }
}

fn hub(endpoint: &str, cache: &Path) -> Hub {
    Hub::new(settings(endpoint, cache)).unwrap()
}

#[test]
fn the_first_fetch_downloads_into_the_python_layout_and_the_second_needs_no_server() {
    let cache = tempfile::tempdir().unwrap();
    let served = repo();
    let server = HubServer::start(vec![served.clone()]);
    let got = hub(&server.url(), cache.path())
        .fetch(REPO, "main", "model.safetensors")
        .unwrap();
    assert!(got.downloaded);
    assert_eq!(got.commit, served.commit);
    assert_eq!(std::fs::read(&got.path).unwrap(), weights());
    // huggingface_hub's layout: the snapshot is a relative link to the blob named by its hash.
    let dir = cache.path().join("models--test-org--tiny-vit");
    let want = dir
        .join("snapshots")
        .join(&served.commit)
        .join("model.safetensors");
    assert_eq!(got.path, want);
    let link = std::fs::read_link(&want).unwrap();
    assert_eq!(
        link,
        Path::new("../../blobs").join(sha256_hex(&weights())),
        "snapshot link"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("refs/main")).unwrap(),
        served.commit
    );
    // With the server running, a second fetch asks for the commit only.
    let before = server.request_count();
    let again = hub(&server.url(), cache.path())
        .fetch(REPO, "main", "model.safetensors")
        .unwrap();
    assert!(!again.downloaded);
    assert_eq!(server.request_count() - before, 1, "one metadata request");
    // With the server gone, the cache serves (the branch's last known commit).
    let url = server.url();
    server.stop();
    let offline = hub(&url, cache.path())
        .fetch(REPO, "main", "model.safetensors")
        .unwrap();
    assert_eq!((offline.path, offline.downloaded), (want.clone(), false));
    // A pinned commit is served without asking anything.
    let pinned = hub(&url, cache.path())
        .fetch(REPO, &served.commit, "model.safetensors")
        .unwrap();
    assert_eq!(pinned.path, want);
    // A file never downloaded is an error naming the cache.
    let e = hub(&url, cache.path())
        .fetch(REPO, "main", "other.json")
        .unwrap_err();
    assert!(matches!(e, HubError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("not in the cache"), "{e}");
}

#[test]
fn offline_mode_uses_the_cache_only() {
    let cache = tempfile::tempdir().unwrap();
    let server = HubServer::start(vec![repo()]);
    let mut s = settings(&server.url(), cache.path());
    s.offline = true;
    let e = Hub::new(s.clone())
        .unwrap()
        .fetch(REPO, "main", "config.json")
        .unwrap_err();
    assert!(matches!(e, HubError::NotCached { .. }), "{e}");
    assert!(e.to_string().contains("HF_HUB_OFFLINE"), "{e}");
    assert_eq!(server.request_count(), 0, "offline sends nothing");
    hub(&server.url(), cache.path())
        .fetch(REPO, "main", "config.json")
        .unwrap();
    let n = server.request_count();
    let got = Hub::new(s)
        .unwrap()
        .fetch(REPO, "main", "config.json")
        .unwrap();
    assert!(!got.downloaded);
    assert_eq!(server.request_count(), n, "offline sends nothing");
}

#[test]
fn hf_endpoint_and_hf_hub_cache_are_read_from_the_environment() {
    let cache = tempfile::tempdir().unwrap();
    let server = HubServer::start(vec![repo()]);
    let url = server.url();
    let cache_dir = cache.path().to_str().unwrap().to_string();
    let s = HubSettings::from_lookup(|k| match k {
        "HF_ENDPOINT" => Some(format!("{url}/")),
        "HF_HUB_CACHE" => Some(cache_dir.clone()),
        _ => None,
    });
    let got = Hub::new(s)
        .unwrap()
        .fetch(REPO, "main", "config.json")
        .unwrap();
    assert!(got.downloaded && got.path.starts_with(cache.path()));
    // Metadata, hf-hub's own metadata before downloading, the download: all on the mirror.
    assert_eq!(
        server.request_count(),
        3,
        "{:#?}",
        server.requests.lock().unwrap()
    );
}

#[test]
fn a_corrupt_download_is_detected_and_removed() {
    let cache = tempfile::tempdir().unwrap();
    let server = HubServer::start(vec![repo()]);
    server
        .faults
        .corrupt
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = hub(&server.url(), cache.path())
        .fetch(REPO, "main", "model.safetensors")
        .unwrap_err();
    assert!(
        matches!(
            e,
            HubError::Checksum {
                algorithm: "sha256",
                ..
            }
        ),
        "{e}"
    );
    let blob = cache
        .path()
        .join("models--test-org--tiny-vit/blobs")
        .join(sha256_hex(&weights()));
    assert!(!blob.exists(), "the corrupt blob is removed");
    // Config files are checked by their Git hash.
    let e = hub(&server.url(), cache.path())
        .fetch(REPO, "main", "config.json")
        .unwrap_err();
    assert!(
        matches!(
            e,
            HubError::Checksum {
                algorithm: "git-sha1",
                ..
            }
        ),
        "{e}"
    );
    server
        .faults
        .corrupt
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let got = hub(&server.url(), cache.path())
        .fetch(REPO, "main", "model.safetensors")
        .unwrap();
    assert_eq!(std::fs::read(got.path).unwrap(), weights());
}

#[test]
fn an_interrupted_download_is_never_used_and_resumes() {
    let cache = tempfile::tempdir().unwrap();
    let server = HubServer::start(vec![repo()]);
    server
        .faults
        .cut_after
        .store(70_000, std::sync::atomic::Ordering::SeqCst);
    let first = hub(&server.url(), cache.path()).fetch(REPO, "main", "model.safetensors");
    let dir = cache.path().join("models--test-org--tiny-vit");
    // Either the cut is an error (the partial file is kept for resuming) or the checksum caught
    // a short file; never a snapshot with a partial file.
    if let Ok(f) = &first {
        panic!("a cut download returned {f:?}");
    }
    let snapshot = dir
        .join("snapshots")
        .join(repo().commit)
        .join("model.safetensors");
    let e = first.unwrap_err();
    eprintln!("cut download: {e}");
    assert!(!snapshot.exists(), "{e}");
    let got = hub(&server.url(), cache.path())
        .fetch(REPO, "main", "model.safetensors")
        .unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), weights());
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| r.contains("range=bytes=70000-")),
        "the second run resumes at the cut: {requests:#?}"
    );
}

#[test]
fn missing_repositories_revisions_files_and_gated_repositories_are_one_line_errors() {
    let cache = tempfile::tempdir().unwrap();
    let mut gated = ServedRepo::new("gated-org/model", &[("config.json", b"{}".to_vec())]);
    gated.token = Some("hf_right".into());
    let server = HubServer::start(vec![repo(), gated]);
    let h = hub(&server.url(), cache.path());
    for (repo_id, rev, file) in [
        ("nobody/nothing", "main", "config.json"),
        (REPO, "v9", "config.json"),
        (REPO, "main", "pytorch_model.bin"),
    ] {
        let e = h.fetch(repo_id, rev, file).unwrap_err();
        assert!(matches!(e, HubError::NotFound { .. }), "{e}");
        let text = e.to_string();
        assert!(
            !text.contains('\n') && text.contains("404") && text.contains(repo_id),
            "{text}"
        );
    }
    let e = h
        .fetch("gated-org/model", "main", "config.json")
        .unwrap_err();
    assert!(
        matches!(
            e,
            HubError::Unauthorized {
                status: 401,
                has_token: false,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("set HF_TOKEN"), "{e}");
    let mut s = settings(&server.url(), cache.path());
    s.token = Some("hf_wrong".into());
    let e = Hub::new(s.clone())
        .unwrap()
        .fetch("gated-org/model", "main", "config.json")
        .unwrap_err();
    assert!(
        matches!(
            e,
            HubError::Unauthorized {
                status: 403,
                has_token: true,
                ..
            }
        ),
        "{e}"
    );
    s.token = Some("hf_right".into());
    Hub::new(s)
        .unwrap()
        .fetch("gated-org/model", "main", "config.json")
        .unwrap();
    let e = h.fetch("../etc", "main", "config.json").unwrap_err();
    assert!(matches!(e, HubError::BadRepoId(_)), "{e}");
}
