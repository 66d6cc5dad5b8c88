//! The external oracle of the data-driven models: journey paths written in the
//! grouped form `tests/oracle/mam_oracle.py` reads, and that script run with the
//! Python of `$TOUCHLINE_ORACLE_PYTHON` (a venv with `marketing-attribution-models`
//! 2.1.1 and `ChannelAttribution`, made by `.ci/run`) under a deadline.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use touchline_actors::domain::datadriven::JourneyPath;

/// The oracle script, kept in the repository.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/oracle/mam_oracle.py");

/// MAM's default path separator; our keys never contain it in oracle datasets.
pub const SEP: &str = " > ";

/// The oracle's Python: `$TOUCHLINE_ORACLE_PYTHON`. An error (never a skip) when
/// it is unset, so a run without the oracle cannot pass for one with it.
pub fn python() -> Result<PathBuf, String> {
    match std::env::var_os("TOUCHLINE_ORACLE_PYTHON") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err("TOUCHLINE_ORACLE_PYTHON is not set: run `bash .ci/run` (it creates the oracle venv \
                  $HOME/.cache/touchline-oracle-venv from tests/oracle/requirements.txt and sets it), or \
                  set it to a python that has those packages"
            .to_string()),
    }
}

/// The TSV header of [`write_paths`]' rows.
pub const HEADER: &str = "dataset\tpath\tconversions\tnulls\n";

/// Appends `paths` as rows `dataset, "k1 > k2 > …", conversions, nulls`, one per
/// distinct key sequence (consecutive repeats kept), in sorted order.
pub fn write_paths(out: &mut String, dataset: &str, paths: &[JourneyPath]) {
    let mut grouped: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in paths {
        assert!(!p.keys.is_empty(), "an empty path has no MAM form");
        for k in &p.keys {
            assert!(!k.contains('>') && !k.contains('\t') && k.trim() == k && !k.is_empty(), "key {k:?}");
        }
        let e = grouped.entry(p.keys.join(SEP)).or_default();
        if p.converted {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    for (path, (conv, null)) in grouped {
        writeln!(out, "{dataset}\t{path}\t{conv}\t{null}").expect("write to String");
    }
}

/// Runs the oracle script on `tsv` (a file starting with [`HEADER`]) with `args`
/// and returns its JSON. Fails if it exits non-zero or outlives `deadline`
/// (then it is killed).
pub fn run(python: &Path, tsv: &Path, args: &[&str], deadline: Duration) -> Result<Value, String> {
    let dir = tsv.parent().ok_or("tsv has no parent dir")?;
    let out = dir.join("oracle-out.json");
    let log = dir.join("oracle-log.txt");
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(python)
        .arg(SCRIPT)
        .arg(tsv)
        .arg(&out)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e} (is TOUCHLINE_ORACLE_PYTHON right?)", python.display()))?;
    let until = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("oracle still running after {deadline:?}; killed"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    if !status.success() {
        return Err(format!("oracle exited with {status}:\n{log_text}"));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}\n{log_text}", out.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("oracle output is not JSON: {e}"))
}

/// A `{key: number}` object of the oracle's output as sorted pairs.
pub fn number_map(v: &Value) -> BTreeMap<String, f64> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .iter()
        .map(|(k, x)| (k.clone(), x.as_f64().unwrap_or_else(|| panic!("{k}: not a number: {x}"))))
        .collect()
}
