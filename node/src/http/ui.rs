//! The report page at `/ui` (issue 21): the built front end of `node/ui/`
//! (committed in `node/ui/dist/`, rebuilt by `node/ui/rebuild.sh`) embedded in
//! the binary and served with its content type, an ETag (`If-None-Match` → 304),
//! `Cache-Control: no-cache` (the file names carry no hash, so every use
//! revalidates) and gzip when the client accepts it. The page needs no token;
//! the `/v1` calls it makes carry the one the user gives it.

use super::error::{ApiError, ErrorCode};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::sync::OnceLock;

/// One embedded file of `node/ui/dist/`.
pub struct Asset {
    /// Path under `dist/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Every file of `node/ui/dist/` (a unit test checks the folder holds no other).
pub const ASSETS: &[Asset] = &[
    Asset { path: "index.html", content_type: "text/html; charset=utf-8", bytes: include_bytes!("../../ui/dist/index.html") },
    Asset { path: "assets/app.js", content_type: "text/javascript; charset=utf-8", bytes: include_bytes!("../../ui/dist/assets/app.js") },
    Asset { path: "assets/app.css", content_type: "text/css; charset=utf-8", bytes: include_bytes!("../../ui/dist/assets/app.css") },
];

/// Only this origin's scripts, styles and API; ECharts sets inline styles.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Smaller files go out as they are.
const GZIP_FROM_BYTES: usize = 1024;

struct Prepared {
    etag: String,
    gzip: Option<Vec<u8>>,
}

/// ETags and gzip bodies, computed once per file on first use.
fn prepared(i: usize) -> &'static Prepared {
    static CELLS: [OnceLock<Prepared>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    const _: () = assert!(ASSETS.len() == 3, "one OnceLock per asset");
    CELLS[i].get_or_init(|| {
        let bytes = ASSETS[i].bytes;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        let gzip = (bytes.len() >= GZIP_FROM_BYTES).then(|| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(bytes).and_then(|_| enc.finish()).ok()
        });
        Prepared { etag: format!("\"{:016x}-{}\"", h.finish(), bytes.len()), gzip: gzip.flatten() }
    })
}

/// Computes every asset's ETag and gzip body now (the node calls it on a
/// blocking thread at start, so the first page load does not wait for
/// compressing the ≈ 630 KB script: 40–80 ms).
pub fn prepare() {
    for i in 0..ASSETS.len() {
        prepared(i);
    }
}

/// The asset a `/ui…` path names: `/ui`, `/ui/` and `/ui/index.html` are the page.
pub fn lookup(path: &str) -> Option<usize> {
    let rest = path.strip_prefix("/ui").filter(|r| r.is_empty() || r.starts_with('/'))?;
    let rest = rest.trim_start_matches('/');
    let rest = if rest.is_empty() { "index.html" } else { rest };
    ASSETS.iter().position(|a| a.path == rest)
}

fn accepts_gzip(parts: &Parts) -> bool {
    parts
        .headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut it = e.split(';');
            let name = it.next().unwrap_or("").trim();
            let refused = it.any(|q| matches!(q.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// `GET /ui…`: the embedded file, 304 when the client holds it, 404 (JSON) for any other path.
pub fn serve(parts: &Parts) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = parts.uri.path();
    let i = lookup(path).ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no page asset at {path}")))?;
    let asset = &ASSETS[i];
    let prep = prepared(i);
    let gzip = prep.gzip.as_deref().filter(|_| accepts_gzip(parts));
    let etag = if gzip.is_some() { format!("{}-gz\"", prep.etag.trim_end_matches('"')) } else { prep.etag.clone() };
    let fresh = parts.headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| t.trim() == etag || t.trim() == "*");
    let mut b = Response::builder()
        .header(ETAG, &etag)
        .header(CACHE_CONTROL, "no-cache")
        .header(VARY, "Accept-Encoding")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer");
    if asset.path == "index.html" {
        b = b.header("content-security-policy", CSP);
    }
    let r = if fresh {
        b.status(StatusCode::NOT_MODIFIED).body(Full::new(Bytes::new()))
    } else {
        b = b.status(StatusCode::OK).header(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        match gzip {
            Some(z) => b.header(CONTENT_ENCODING, "gzip").body(Full::new(Bytes::from_static(z))),
            None => b.body(Full::new(Bytes::from_static(asset.bytes))),
        }
    };
    r.map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn every_built_file_is_embedded_and_no_other() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/dist");
        let mut on_disk = Vec::new();
        files(&dist, &dist, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "node/ui/dist and ui::ASSETS differ: add the file to ASSETS (or fix vite.config.ts's fixed names)");
        let index = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        for a in &ASSETS[1..] {
            assert!(index.contains(&format!("/ui/{}", a.path)), "index.html does not load /ui/{}", a.path);
        }
    }

    #[test]
    fn paths_name_their_asset() {
        assert_eq!(lookup("/ui"), Some(0));
        assert_eq!(lookup("/ui/"), Some(0));
        assert_eq!(lookup("/ui/index.html"), Some(0));
        assert_eq!(lookup("/ui/assets/app.js"), Some(1));
        assert_eq!(lookup("/ui/assets/nope.js"), None);
        assert_eq!(lookup("/uix"), None);
        assert_eq!(lookup("/ui/../Cargo.toml"), None);
        assert_eq!(super::super::routes::route_name("/ui/assets/app.js"), "ui", "the page has its own latency label");
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Response<Full<Bytes>> {
        let mut req = hyper::Request::builder().uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (parts, _) = req.body(()).unwrap().into_parts();
        serve(&parts).unwrap_or_else(|e| e.into_response())
    }

    #[test]
    fn etag_revalidates_and_gzip_is_negotiated() {
        let r = get("/ui/assets/app.js", &[]);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
        let etag = r.headers()[ETAG].to_str().unwrap().to_string();
        assert_eq!(get("/ui/assets/app.js", &[("if-none-match", &etag)]).status(), StatusCode::NOT_MODIFIED);
        let z = get("/ui/assets/app.js", &[("accept-encoding", "br, gzip")]);
        assert_eq!(z.headers()[CONTENT_ENCODING], "gzip");
        assert_ne!(z.headers()[ETAG].to_str().unwrap(), etag, "the gzip body has its own ETag");
        assert!(get("/ui/assets/app.js", &[("accept-encoding", "gzip;q=0")]).headers().get(CONTENT_ENCODING).is_none());
        let page = get("/ui", &[]);
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(page.headers().contains_key("content-security-policy"));
        assert_eq!(get("/ui/assets/missing.js", &[]).status(), StatusCode::NOT_FOUND);
    }
}
