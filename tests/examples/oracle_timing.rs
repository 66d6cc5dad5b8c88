//! Times the data-driven models against the oracle's packages on the criterion
//! benchmark's 100 000 journey paths (`touchline_benches::journey_paths`), for
//! BENCHMARKS.md: ours in-process (median of 11 runs after a warm-up); MAM's
//! `run_markov` / `run_shapley(max_size=None)` and ChannelAttribution's
//! `markov_model(order=1)` once each through `tests/oracle/mam_oracle.py --time`
//! (MAM on one row per distinct path and on one row per path). Also prints the
//! largest differences between ours and the packages on these paths.
//!
//! Run: `TOUCHLINE_ORACLE_PYTHON=$HOME/.cache/touchline-oracle-venv/bin/python \
//!   cargo run --release -p touchline-tests --example oracle_timing`

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use touchline_actors::domain::datadriven::{self, DataDrivenResult, JourneyPath};
use touchline_tests::oracle;

const PATHS: usize = 100_000;

/// Median wall time of `runs` calls of `f` (after one warm-up call).
fn median(runs: usize, paths: &[JourneyPath], f: fn(&[JourneyPath]) -> DataDrivenResult) -> Duration {
    std::hint::black_box(f(paths));
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f(std::hint::black_box(paths)));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// Largest `|ours − theirs|` over the keys of either (a missing key counts as 0).
fn largest_diff(ours: &[(String, f64)], theirs: &serde_json::Value) -> f64 {
    let theirs = oracle::number_map(theirs);
    let ours: BTreeMap<&str, f64> = ours.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let keys: BTreeSet<&str> = ours.keys().copied().chain(theirs.keys().map(String::as_str)).collect();
    keys.into_iter().map(|k| (ours.get(k).copied().unwrap_or(0.0) - theirs.get(k).copied().unwrap_or(0.0)).abs()).fold(0.0, f64::max)
}

fn main() -> Result<(), String> {
    let python = oracle::python()?;
    let paths = touchline_benches::journey_paths(PATHS);
    let ours_markov = median(11, &paths, datadriven::markov);
    let ours_shapley = median(11, &paths, datadriven::shapley);

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut tsv = String::from(oracle::HEADER);
    oracle::write_paths(&mut tsv, "bench", &paths);
    let file = dir.path().join("paths.tsv");
    std::fs::write(&file, tsv).map_err(|e| e.to_string())?;
    let out = oracle::run(&python, &file, &["--time"], Duration::from_secs(1800))?;
    let bench = &out["datasets"]["bench"];
    let ms = |k: &str| bench["seconds"][k].as_f64().map_or("not run".to_string(), |s| format!("{:.1} ms", s * 1e3));
    let ours = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);

    let distinct: BTreeSet<_> = paths.iter().map(|p| (&p.keys, p.converted)).collect();
    let conversions = paths.iter().filter(|p| p.converted).count();
    println!("versions: {}", out["versions"]);
    println!("{PATHS} paths ({} distinct, {conversions} converting)", distinct.len());
    println!("| model | touchline | MAM, grouped rows | MAM, one row per path | ChannelAttribution |");
    println!("|---|---|---|---|---|");
    println!(
        "| markov | {} | {} | {} | {} |",
        ours(ours_markov),
        ms("mam_run_markov"),
        ms("mam_run_markov_per_path"),
        ms("ca_markov_model")
    );
    println!(
        "| shapley | {} | {} | {} | — |",
        ours(ours_shapley),
        ms("mam_run_shapley"),
        ms("mam_run_shapley_per_path")
    );
    println!("| (MAM building its frame) | — | {} | {} | — |", ms("mam_preprocess"), ms("mam_preprocess_per_path"));
    let markov = datadriven::markov(&paths);
    println!(
        "largest |ours − MAM|: removal effects {:e}, shapley credits {:e}",
        largest_diff(&markov.removal_effects, &bench["markov_removal_effects"]),
        largest_diff(&datadriven::shapley(&paths).credits, &bench["shapley"]),
    );
    if !bench["ca_markov"].is_null() {
        let worst = largest_diff(&markov.credits, &bench["ca_markov"]) / conversions as f64;
        println!("largest |ours − ChannelAttribution| markov credit: {:.3} % of the conversions", worst * 100.0);
    }
    Ok(())
}
