//! A Hugging Face Hub stand-in for tests: an HTTP/1.1 server on 127.0.0.1 (loopback only, an
//! ephemeral port) that serves model repositories in the Hub's URL layout,
//! `GET /<org>/<name>/resolve/<revision>/<file>`, with the headers hf-hub and `huggingface_hub`
//! read: `X-Repo-Commit`, `ETag` (the Git blob hash), and for LFS files (`*.safetensors`)
//! `X-Linked-Etag` (SHA-256) and `X-Linked-Size`; `Range` requests get `206` and
//! `Content-Range`. Gated repositories answer 401 without a token and 403 with a wrong one;
//! unknown repositories, revisions and files 404.
//!
//! Faults for tests: serve a corrupt body under the right checksum, or cut the body of the
//! next full download after some bytes. It counts requests, and it stops by itself on drop
//! or after two minutes, whichever comes first.

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// One served repository.
#[derive(Debug, Clone)]
pub struct ServedRepo {
    /// `org/name`.
    pub id: String,
    /// The commit `main` points at.
    pub commit: String,
    /// Files by name.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The token a gated repository wants.
    pub token: Option<String>,
}

impl ServedRepo {
    /// A public repository at a commit derived from its id.
    pub fn new(id: &str, files: &[(&str, Vec<u8>)]) -> Self {
        let digest = Sha1::digest(id.as_bytes());
        Self {
            id: id.into(),
            commit: hex(&digest),
            files: files
                .iter()
                .map(|(n, b)| (n.to_string(), b.clone()))
                .collect(),
            token: None,
        }
    }
}

/// What the tests may break.
#[derive(Debug, Default)]
pub struct Faults {
    /// Flip one byte of every body (the headers keep the true checksum).
    pub corrupt: AtomicBool,
    /// Cut the next full-file body (`Range: bytes=0-`) after this many bytes (0: off).
    pub cut_after: AtomicUsize,
}

/// A running server.
pub struct HubServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Request lines seen, with their `Range` header.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Faults to inject.
    pub faults: Arc<Faults>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Git's blob hash of `bytes`, hex.
pub fn git_sha1_hex(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

impl HubServer {
    /// Starts serving `repos`.
    pub fn start(repos: Vec<ServedRepo>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Faults::default());
        let repos = Arc::new(repos);
        let thread = {
            let (stop, requests, faults) = (stop.clone(), requests.clone(), faults.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (repos, requests, faults) =
                                (repos.clone(), requests.clone(), faults.clone());
                            std::thread::spawn(move || {
                                let _ = serve(stream, &repos, &requests, &faults);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Self {
            addr,
            stop,
            thread: Some(thread),
            requests,
            faults,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen so far.
    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Stops accepting connections (the port then refuses them).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(
    stream: TcpStream,
    repos: &[ServedRepo],
    requests: &Mutex<Vec<String>>,
    faults: &Faults,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let range = headers.get("range").cloned();
    requests.lock().unwrap().push(format!(
        "{} range={}",
        line.trim(),
        range.as_deref().unwrap_or("-")
    ));
    let mut out = stream;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    // /<org>/<name>/resolve/<revision>/<file>
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    let respond = |out: &mut TcpStream, status: &str, extra: &str| {
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\n{extra}Connection: close\r\n\r\n"
        )
    };
    if parts.len() != 5 || parts[2] != "resolve" {
        return respond(&mut out, "404 Not Found", "X-Error-Code: RepoNotFound\r\n");
    }
    let id = format!("{}/{}", parts[0], parts[1]);
    let Some(repo) = repos.iter().find(|r| r.id == id) else {
        return respond(&mut out, "404 Not Found", "X-Error-Code: RepoNotFound\r\n");
    };
    if let Some(token) = &repo.token {
        match headers.get("authorization") {
            None => return respond(&mut out, "401 Unauthorized", "X-Error-Code: GatedRepo\r\n"),
            Some(v) if v != &format!("Bearer {token}") => {
                return respond(&mut out, "403 Forbidden", "X-Error-Code: GatedRepo\r\n")
            }
            Some(_) => {}
        }
    }
    if parts[3] != "main" && parts[3] != repo.commit {
        return respond(
            &mut out,
            "404 Not Found",
            "X-Error-Code: RevisionNotFound\r\n",
        );
    }
    let Some(body) = repo.files.get(parts[4]) else {
        return respond(&mut out, "404 Not Found", "X-Error-Code: EntryNotFound\r\n");
    };
    let total = body.len();
    let (start, end) = match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let a: usize = a.parse().unwrap_or(0);
            let b: usize = b.parse().map_or(total.saturating_sub(1), |b: usize| {
                b.min(total.saturating_sub(1))
            });
            (a.min(total), (b + 1).max(a.min(total)))
        }
        None => (0, total),
    };
    let mut payload = body[start..end].to_vec();
    if faults.corrupt.load(Ordering::SeqCst) && !payload.is_empty() && end - start > 1 {
        let mid = payload.len() / 2;
        payload[mid] ^= 0xff;
    }
    let mut extra = format!(
        "X-Repo-Commit: {}\r\nETag: \"{}\"\r\n",
        repo.commit,
        git_sha1_hex(body)
    );
    if parts[4].ends_with(".safetensors") {
        extra.push_str(&format!(
            "X-Linked-Etag: \"{}\"\r\nX-Linked-Size: {total}\r\n",
            sha256_hex(body)
        ));
    }
    let status = if range.is_some() {
        extra.push_str(&format!(
            "Content-Range: bytes {start}-{}/{total}\r\n",
            end.saturating_sub(1)
        ));
        "206 Partial Content"
    } else {
        "200 OK"
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        payload.len()
    )?;
    let cut = faults.cut_after.load(Ordering::SeqCst);
    if cut > 0 && start == 0 && end - start > 1 && cut < payload.len() {
        faults.cut_after.store(0, Ordering::SeqCst);
        out.write_all(&payload[..cut])?;
        out.flush()?;
        // Close mid-body.
        return out.shutdown(std::net::Shutdown::Both);
    }
    out.write_all(&payload)?;
    out.flush()?;
    // Drain what the client may still send, so that closing does not reset the connection.
    let mut sink = [0u8; 256];
    reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))?;
    let _ = reader.get_mut().read(&mut sink);
    Ok(())
}
