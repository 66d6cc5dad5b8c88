//! Partition snapshot transfer between nodes (admin-only internal routes), so
//! that a partition moving to a node arrives as RocksDB SST files instead of a
//! replay of its whole changelog:
//!
//! - `GET /internal/v1/partitions/{p}/checkpoint` — this node's changelog
//!   position for `p` (404 without changelog-backed state);
//! - `POST /internal/v1/partitions/{p}/snapshots` — start exporting `p` (202 and
//!   an id; the export runs on the blocking pool, outside the request timeout);
//! - `GET /internal/v1/snapshots/{id}` — `exporting`, or `ready` with its size;
//! - `GET /internal/v1/snapshots/{id}/data?offset=N` — up to 8 MiB from `N`;
//! - `DELETE /internal/v1/snapshots/{id}` — done with it.
//!
//! The shelf holds few exports, each for a bounded time; files live under
//! `<data_dir>/snapshots` (the DB's file system, so an ingest moves, not copies).
//! [`PeerSnapshots`] is the other side: the restore's
//! [`touchline_cluster::snapshot::SnapshotSource`] over this HTTP surface, with
//! the node's TLS and admin token.

use super::error::{ApiError, ErrorCode};
use super::forward::Forwarder;
use super::{json_response, AppState};
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use touchline_cluster::snapshot::{Fetched, SnapshotSource};

/// Bytes per data request.
pub const CHUNK_BYTES: usize = 8 << 20;
/// Exports held at once (each is a file of one partition's state).
const MAX_HELD: usize = 4;
/// An export nobody fetched or deleted within this time is removed.
const HELD_FOR: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
enum Export {
    Running,
    Ready { path: PathBuf, bytes: u64, changelog_next: i64 },
    Failed(String),
}

/// The exports this node serves.
pub struct SnapshotShelf {
    dir: PathBuf,
    held: Mutex<HashMap<String, (Export, Instant)>>,
    next_id: AtomicU64,
}

impl SnapshotShelf {
    /// Clears what a previous process left in `dir`.
    pub fn new(dir: PathBuf) -> std::io::Result<SnapshotShelf> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(SnapshotShelf { dir, held: Mutex::new(HashMap::new()), next_id: AtomicU64::new(1) })
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Export, Instant)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops expired exports (and their files).
    fn expire(&self) {
        let mut held = self.lock();
        held.retain(|_, (e, at)| {
            let keep = at.elapsed() < HELD_FOR || matches!(e, Export::Running);
            if let (false, Export::Ready { path, .. }) = (keep, &*e) {
                let _ = std::fs::remove_file(path);
            }
            keep
        });
    }

    fn get(&self, id: &str) -> Result<Export, ApiError> {
        self.lock().get(id).map(|(e, _)| e.clone()).ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no snapshot {id:?} here (expired or deleted)")))
    }

    fn remove(&self, id: &str) {
        if let Some((Export::Ready { path, .. }, _)) = self.lock().remove(id) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn partition_of(s: &str) -> Result<u16, ApiError> {
    s.parse::<u16>().map_err(|_| ApiError::param("partition", format!("{s:?} is not a partition number")))
}

/// Dispatches `/internal/v1/...` (already authorized as admin).
pub async fn route(state: Arc<AppState>, method: &Method, segs: &[&str], query: Option<&str>) -> Result<Response<Full<Bytes>>, ApiError> {
    let shelf = state.snapshots.clone();
    shelf.expire();
    match (segs, method) {
        (["partitions", p, "checkpoint"], &Method::GET) => {
            let p = partition_of(p)?;
            let store = state.store.clone();
            let cp = tokio::task::spawn_blocking(move || store.checkpoint(p))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            match cp {
                Some(c) if c.changelog_next > 0 => Ok(json_response(StatusCode::OK, &json!({"partition": p, "changelog_next": c.changelog_next, "next_offset": c.next_offset}))),
                _ => Err(ApiError::new(ErrorCode::NotFound, format!("no changelog-backed state of partition {p} here"))),
            }
        }
        (["partitions", p, "snapshots"], &Method::POST) => {
            let p = partition_of(p)?;
            let id = {
                let mut held = shelf.lock();
                if held.len() >= MAX_HELD {
                    return Err(ApiError::new(ErrorCode::Overloaded, format!("{MAX_HELD} snapshots are already held here; retry later")));
                }
                let id = format!("p{p}-{}", shelf.next_id.fetch_add(1, Ordering::Relaxed));
                held.insert(id.clone(), (Export::Running, Instant::now()));
                id
            };
            let (store, shelf2, id2) = (state.store.clone(), shelf.clone(), id.clone());
            tokio::task::spawn_blocking(move || {
                let path = shelf2.dir.join(format!("{id2}.sst"));
                let started = Instant::now();
                let done = match store.export_partition(p, &path) {
                    Ok(Some(info)) => {
                        touchline_actors::metrics::snapshot_bytes("sent", info.bytes);
                        tracing::info!(partition = p, keys = info.keys, bytes = info.bytes, secs = started.elapsed().as_secs_f64(), "exported a partition snapshot");
                        Export::Ready { path, bytes: info.bytes, changelog_next: info.checkpoint.changelog_next }
                    }
                    Ok(None) => Export::Failed(format!("no changelog-backed state of partition {p} here")),
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        Export::Failed(e.to_string())
                    }
                };
                shelf2.lock().insert(id2, (done, Instant::now()));
            });
            Ok(json_response(StatusCode::ACCEPTED, &json!({"id": id})))
        }
        ([ "snapshots", id], &Method::GET) => match shelf.get(id)? {
            Export::Running => Ok(json_response(StatusCode::OK, &json!({"id": id, "state": "exporting"}))),
            Export::Ready { bytes, changelog_next, .. } => Ok(json_response(StatusCode::OK, &json!({"id": id, "state": "ready", "bytes": bytes, "changelog_next": changelog_next}))),
            Export::Failed(e) => Ok(json_response(StatusCode::OK, &json!({"id": id, "state": "failed", "error": e}))),
        },
        (["snapshots", id, "data"], &Method::GET) => {
            let Export::Ready { path, bytes, .. } = shelf.get(id)? else {
                return Err(ApiError::new(ErrorCode::Unavailable, format!("snapshot {id:?} is not ready")));
            };
            let offset = super::params::Params::parse(query, &["offset"])?.int("offset", 0, bytes as i64)?.unwrap_or(0) as u64;
            let chunk = tokio::task::spawn_blocking(move || read_chunk(&path, offset, CHUNK_BYTES))
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("snapshot read: {e}")))?;
            Response::builder()
                .status(StatusCode::OK)
                .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
                .body(Full::new(Bytes::from(chunk)))
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
        }
        (["snapshots", id], &Method::DELETE) => {
            shelf.remove(id);
            Ok(json_response(StatusCode::OK, &json!({"id": id, "state": "deleted"})))
        }
        _ => Err(ApiError::new(ErrorCode::NotFound, "no such internal route")),
    }
}

fn read_chunk(path: &std::path::Path, offset: u64, max: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(max);
    f.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Fetches snapshots from the other alive members (see the module doc).
pub struct PeerSnapshots {
    /// The node's client towards its peers, with their membership table.
    pub client: Arc<Forwarder>,
    pub admin_token: Option<String>,
    /// Where received files go (the store's file system).
    pub dir: PathBuf,
    /// Names received files uniquely.
    pub received: AtomicU64,
}

/// Longest wait for an export to become ready.
const EXPORT_WAIT: Duration = Duration::from_secs(600);

impl PeerSnapshots {
    async fn call(&self, addr: &str, method: Method, path: &str, max: usize, timeout: Duration) -> Result<Bytes, String> {
        let (status, body) = self.client.call(addr, method, path, self.admin_token.as_deref(), max, timeout).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{addr}{path}: {status} {}", String::from_utf8_lossy(&body[..body.len().min(200)])))
        }
    }

    async fn json(&self, addr: &str, method: Method, path: &str, timeout: Duration) -> Result<serde_json::Value, String> {
        let b = self.call(addr, method, path, 64 << 10, timeout).await?;
        serde_json::from_slice(&b).map_err(|e| format!("{addr}{path}: {e}"))
    }

    /// Exports `partition` at `addr` and downloads it into a local file.
    async fn download(&self, addr: &str, partition: i32) -> Result<(PathBuf, u64), String> {
        let started = Instant::now();
        let v = self.json(addr, Method::POST, &format!("/internal/v1/partitions/{partition}/snapshots"), Duration::from_secs(10)).await?;
        let id = v["id"].as_str().ok_or("snapshot id missing")?.to_string();
        let result = self.download_id(addr, partition, &id).await;
        tracing::info!(partition, secs = started.elapsed().as_secs_f64(), ok = result.is_ok(), "snapshot download finished");
        let _ = self.call(addr, Method::DELETE, &format!("/internal/v1/snapshots/{id}"), 4096, Duration::from_secs(5)).await;
        result
    }

    async fn download_id(&self, addr: &str, partition: i32, id: &str) -> Result<(PathBuf, u64), String> {
        let until = Instant::now() + EXPORT_WAIT;
        let bytes = loop {
            let v = self.json(addr, Method::GET, &format!("/internal/v1/snapshots/{id}"), Duration::from_secs(10)).await?;
            match v["state"].as_str() {
                Some("ready") => break v["bytes"].as_u64().ok_or("snapshot size missing")?,
                Some("exporting") if Instant::now() < until => tokio::time::sleep(Duration::from_millis(50)).await,
                Some("exporting") => return Err(format!("export of partition {partition} at {addr} not ready within {EXPORT_WAIT:?}")),
                _ => return Err(format!("export of partition {partition} at {addr} failed: {}", v["error"])),
            }
        };
        let path = self.dir.join(format!("in-{partition}-{}.sst", self.received.fetch_add(1, Ordering::Relaxed)));
        let mut file = tokio::fs::File::create(&path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        let mut got = 0u64;
        let copied = async {
            use tokio::io::AsyncWriteExt;
            while got < bytes {
                let chunk = self.call(addr, Method::GET, &format!("/internal/v1/snapshots/{id}/data?offset={got}"), CHUNK_BYTES, Duration::from_secs(60)).await?;
                if chunk.is_empty() {
                    return Err(format!("snapshot {id} at {addr} ended at {got} of {bytes} bytes"));
                }
                file.write_all(&chunk).await.map_err(|e| e.to_string())?;
                got += chunk.len() as u64;
            }
            file.sync_all().await.map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = copied {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        Ok((path, bytes))
    }

    async fn best(&self, partition: i32, min_changelog_next: i64) -> Result<Option<Fetched>, String> {
        let members = &self.client.members;
        let me = members.node_id().to_string();
        let peers: Vec<(String, String)> = members.members().into_iter().filter(|m| m.alive && m.heartbeat.node_id != me).map(|m| (m.heartbeat.node_id, m.heartbeat.http_addr)).collect();
        let path = format!("/internal/v1/partitions/{partition}/checkpoint");
        let asks = peers.iter().map(|(id, addr)| async {
            let v = self.json(addr, Method::GET, &path, Duration::from_secs(3)).await.ok()?;
            Some((v["changelog_next"].as_i64()?, id.clone(), addr.clone()))
        });
        let mut offers: Vec<(i64, String, String)> = futures::future::join_all(asks).await.into_iter().flatten().filter(|o| o.0 >= min_changelog_next).collect();
        offers.sort_by_key(|o| std::cmp::Reverse(o.0));
        let mut last_err = None;
        for (_, node, addr) in offers {
            match self.download(&addr, partition).await {
                Ok((path, bytes)) => return Ok(Some(Fetched { path, from_node: node, bytes })),
                Err(e) => {
                    tracing::warn!(partition, from = %node, error = %e, "snapshot download failed; trying the next peer");
                    last_err = Some(e);
                }
            }
        }
        last_err.map_or(Ok(None), Err)
    }
}

impl SnapshotSource for PeerSnapshots {
    fn fetch(&self, partition: i32, min_changelog_next: i64) -> BoxFuture<'_, Result<Option<Fetched>, String>> {
        Box::pin(self.best(partition, min_changelog_next))
    }
}

/// Where a node keeps snapshot files: inside its data directory, so the store
/// and the files share a file system.
pub fn snapshot_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("snapshots")
}
