//! A small static file server for `dist/` (and `models/` under `/models/`), for local use and tests.
//! It binds to 127.0.0.1 only. It sends COOP and COEP headers, so the page is cross-origin
//! isolated and the worker may use several threads.

use std::path::{Component, Path, PathBuf};
use std::thread;

use anyhow::{anyhow, Result};
use tiny_http::{Header, Response, Server};

/// A server running on a background thread.
#[derive(Debug)]
pub struct Running {
    pub port: u16,
}

/// Cross-origin isolation (`crossOriginIsolated`, hence `SharedArrayBuffer` for the
/// multi-threaded worker). `web/sw.js` adds the same headers on hosts that can't.
const ISOLATION_HEADERS: &[(&str, &str)] =
    &[("Cross-Origin-Opener-Policy", "same-origin"), ("Cross-Origin-Embedder-Policy", "require-corp")];

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// Maps a URL path to a file, refusing anything that climbs out of the roots.
fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let (base, rel) = match rel.strip_prefix("models") {
        Ok(r) => (root.join("models"), r.to_path_buf()),
        Err(_) => (root.join("dist"), rel.to_path_buf()),
    };
    let file = if rel.as_os_str().is_empty() { base.join("index.html") } else { base.join(rel) };
    // A directory serves its index.html (e.g. /ort-bench/).
    let file = if file.is_dir() { file.join("index.html") } else { file };
    file.is_file().then_some(file)
}

/// Answers each request on a thread of its own: a client that stops reading a large response
/// (a worker killed mid-download, a closing browser) must not hold up every later request, as it
/// would with one thread writing responses in turn.
fn handle(server: Server, root: PathBuf, isolation: bool) {
    for req in server.incoming_requests() {
        let root = root.clone();
        thread::spawn(move || respond(req, &root, isolation));
    }
}

fn respond(req: tiny_http::Request, root: &Path, isolation: bool) {
    let resp = match resolve(root, req.url()).and_then(|f| std::fs::File::open(&f).ok().map(|h| (f, h))) {
        Some((path, file)) => {
            let ct = Header::from_bytes("Content-Type", content_type(&path)).expect("static header");
            let nc = Header::from_bytes("Cache-Control", "no-cache").expect("static header");
            let mut resp = Response::from_file(file).with_header(ct).with_header(nc);
            for (name, value) in ISOLATION_HEADERS.iter().filter(|_| isolation) {
                resp.add_header(Header::from_bytes(*name, *value).expect("static header"));
            }
            req.respond(resp)
        }
        None => req.respond(Response::from_string("not found").with_status_code(404)),
    };
    if let Err(e) = resp {
        eprintln!("serve: {e}");
    }
}

/// Starts serving on `port` (0 = any free port) in the background.
pub fn spawn(root: &Path, port: u16) -> Result<Running> {
    spawn_with(root, port, true)
}

/// Like [`spawn`], but without the isolation headers, as a static host that cannot send them
/// (the end-to-end tests check the single-threaded fallback and the service worker's headers).
pub fn spawn_plain(root: &Path, port: u16) -> Result<Running> {
    spawn_with(root, port, false)
}

fn spawn_with(root: &Path, port: u16, isolation: bool) -> Result<Running> {
    let server = Server::http(("127.0.0.1", port)).map_err(|e| anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let port = server.server_addr().to_ip().map(|a| a.port()).ok_or_else(|| anyhow!("no TCP address"))?;
    let root = root.to_path_buf();
    thread::spawn(move || handle(server, root, isolation));
    Ok(Running { port })
}

/// Serves until interrupted.
pub fn serve_forever(root: &Path, port: u16) -> Result<()> {
    let server = Server::http(("127.0.0.1", port)).map_err(|e| anyhow!("cannot listen on 127.0.0.1:{port}: {e} (try `cargo xtask serve 8080`)"))?;
    println!("Hawthorne is being served at http://127.0.0.1:{port}/  (Ctrl-C to stop)");
    handle(server, root.to_path_buf(), true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape_the_roots() {
        let root = crate::repo_root();
        assert!(resolve(&root, "/../Cargo.toml").is_none());
        assert!(resolve(&root, "/models/../Cargo.toml").is_none());
        assert_eq!(content_type(Path::new("a/b.wasm")), "application/wasm");
        let dir = std::env::temp_dir().join(format!("hawthorne-serve-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dist/sub")).expect("temp dir");
        std::fs::write(dir.join("dist/sub/index.html"), "x").expect("write");
        assert_eq!(resolve(&dir, "/sub/"), Some(dir.join("dist/sub/index.html")));
        assert_eq!(resolve(&dir, "/sub/?a=b"), Some(dir.join("dist/sub/index.html")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
