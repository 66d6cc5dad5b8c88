//! Where a node keeps RocksDB (`data_dir`), and why the embedded broker changes
//! the answer. Local state holds partition checkpoints: offsets into the events
//! and changelog topics of the broker it was built from. The embedded broker
//! (librdkafka's mock cluster) starts empty on every run, so state from an
//! earlier run can never be restored against it (the restore would wait forever
//! for offsets that no longer exist). Hence:
//!
//! - embedded broker, no `data_dir` given: a fresh temporary directory, removed
//!   on exit (a restart starts clean);
//! - embedded broker, `data_dir` given: the directory is marked as embedded
//!   ([`EMBEDDED_MARKER`]); a later embedded run finds the mark and starts afresh
//!   (logged), and a non-empty directory without the mark — state built against
//!   real brokers — is refused rather than wiped;
//! - real brokers: `data_dir` (default `./touchline-data`); a directory marked as
//!   embedded is refused (its offsets mean nothing to those brokers).

use crate::config::{ConfigError, NodeConfig};
use std::path::{Path, PathBuf};

/// `data_dir` when none is configured and the node runs against real brokers.
pub const DEFAULT: &str = "./touchline-data";
/// The file marking a directory as holding state of an embedded-broker run.
pub const EMBEDDED_MARKER: &str = "EMBEDDED-BROKER";

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid { key: "data_dir", message }
}

fn io(path: &Path, what: &str, e: std::io::Error) -> ConfigError {
    invalid(format!("{}: cannot {what}: {e}", path.display()))
}

/// The data dir of a node on real brokers.
pub fn path(c: &NodeConfig) -> PathBuf {
    c.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT))
}

/// A directory the node runs in; a temporary one is removed on drop.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    temporary: bool,
}

impl DataDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn has_entries(dir: &Path) -> Result<bool, ConfigError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(dir, "list it", e)),
    }
}

/// Refuses a directory marked by an embedded-broker run for a node on `brokers`.
pub fn check_for_brokers(c: &NodeConfig, brokers: &str) -> Result<(), ConfigError> {
    let dir = path(c);
    if dir.join(EMBEDDED_MARKER).exists() {
        return Err(invalid(format!(
            "{} holds the state of a run on the embedded broker ({EMBEDDED_MARKER} is in it); its offsets mean nothing to the brokers {brokers}: \
             remove the directory or give another data_dir",
            dir.display()
        )));
    }
    Ok(())
}

/// The directory of a node on the embedded broker (see the module doc).
pub fn for_embedded(configured: Option<&Path>) -> Result<DataDir, ConfigError> {
    let Some(dir) = configured else {
        let dir = std::env::temp_dir().join(format!("touchline-node-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, "create it", e))?;
        mark(&dir)?;
        println!("touchline: embedded broker: state in the temporary directory {} (removed on exit; the broker starts empty on every run)", dir.display());
        return Ok(DataDir { path: dir, temporary: true });
    };
    if dir.join(EMBEDDED_MARKER).exists() {
        tracing::warn!(
            data_dir = %dir.display(),
            "data dir holds the state of an earlier run on the embedded broker, whose events are gone with it: starting afresh (emptying the directory)"
        );
        empty(dir)?;
    } else if has_entries(dir)? {
        return Err(invalid(format!(
            "{} is not empty and was not written by a node on the embedded broker: its state refers to a real Kafka cluster, \
             which the embedded broker (empty on every start) cannot restore. Run with --brokers pointing at that cluster, \
             or give an empty or new data_dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, "create it", e))?;
    mark(dir)?;
    Ok(DataDir { path: dir.to_path_buf(), temporary: false })
}

fn mark(dir: &Path) -> Result<(), ConfigError> {
    let text = "This directory holds the state of a touchline node on its embedded broker, which starts empty on every run;\n\
                the next run on the embedded broker empties it and starts afresh. A node on real brokers refuses it.\n";
    std::fs::write(dir.join(EMBEDDED_MARKER), text).map_err(|e| io(dir, "write its marker", e))
}

/// Removes everything inside `dir`, keeping `dir` itself (it may be a mount point).
fn empty(dir: &Path) -> Result<(), ConfigError> {
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, "list it", e))? {
        let p = entry.map_err(|e| io(dir, "list it", e))?.path();
        let r = if p.is_dir() && !p.is_symlink() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        r.map_err(|e| io(&p, "remove it", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_dir_is_marked_emptied_on_the_next_embedded_run_and_refused_with_brokers() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("d");
        let d = for_embedded(Some(&dir)).unwrap();
        assert!(dir.join(EMBEDDED_MARKER).exists());
        std::fs::write(dir.join("CURRENT"), "x").unwrap();
        std::fs::create_dir_all(dir.join("snapshots/1")).unwrap();
        drop(d);
        assert!(dir.join("CURRENT").exists(), "an explicit dir is kept on exit");
        for_embedded(Some(&dir)).unwrap();
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from(EMBEDDED_MARKER)], "only the new marker is left");
        let c = NodeConfig { data_dir: Some(dir.clone()), ..NodeConfig::default() };
        let e = check_for_brokers(&c, "k:9092").unwrap_err().to_string();
        assert!(e.contains("`data_dir`") && e.contains(EMBEDDED_MARKER), "{e}");
    }

    #[test]
    fn state_of_real_brokers_is_refused_never_wiped() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("CURRENT"), "x").unwrap();
        let e = for_embedded(Some(root.path())).unwrap_err().to_string();
        assert!(e.contains("`data_dir`") && e.contains("--brokers"), "{e}");
        assert!(root.path().join("CURRENT").exists());
        let c = NodeConfig { data_dir: Some(root.path().to_path_buf()), ..NodeConfig::default() };
        check_for_brokers(&c, "k:9092").unwrap();
    }

    #[test]
    fn without_a_data_dir_the_embedded_node_gets_a_temporary_one() {
        let d = for_embedded(None).unwrap();
        let p = d.path().to_path_buf();
        assert!(p.starts_with(std::env::temp_dir()) && p.is_dir());
        drop(d);
        assert!(!p.exists(), "removed on exit");
        assert_eq!(path(&NodeConfig::default()), PathBuf::from(DEFAULT));
    }
}
