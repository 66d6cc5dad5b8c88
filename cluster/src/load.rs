//! Per-partition load as its owner measures it, for the load-based placement
//! (`placement.rs`): records per second the partition asks of its owner —
//! its arrival rate (growth of the high watermark), smoothed exponentially,
//! plus its backlog spread over a horizon (a partition with a backlog needs
//! that much more to catch up; a replayed or preloaded topic has no arrival
//! rate, only backlog). Pure: fed observations, no clock of its own.

use std::collections::BTreeMap;

/// Smoothing and backlog horizon of a [`LoadMeter`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadParams {
    /// Time constant of the exponential smoothing of the arrival rate, ms.
    pub smoothing_ms: i64,
    /// The backlog counts as load spread over this many seconds.
    pub backlog_horizon_s: f64,
}

impl Default for LoadParams {
    fn default() -> Self {
        LoadParams { smoothing_ms: 30_000, backlog_horizon_s: 60.0 }
    }
}

#[derive(Clone, Copy, Debug)]
struct Last {
    at_ms: i64,
    high_watermark: i64,
    rate: f64,
}

/// Smoothed load per partition.
#[derive(Clone, Debug, Default)]
pub struct LoadMeter {
    params: LoadParams,
    last: BTreeMap<i32, Last>,
}

impl LoadMeter {
    pub fn new(params: LoadParams) -> LoadMeter {
        LoadMeter { params, last: BTreeMap::new() }
    }

    /// Observes `partition` at `now_ms` with its high watermark and lag
    /// (negative = unknown) and returns its load, records/s. The first
    /// observation has no rate yet: only the backlog counts.
    pub fn observe(&mut self, partition: i32, now_ms: i64, high_watermark: i64, lag: i64) -> f64 {
        self.observe_from(partition, now_ms, high_watermark, lag, 0.0)
    }

    /// [`observe`](Self::observe), where a partition without history starts
    /// from the rate `seed` (the load its previous owner reported, from the
    /// plan in force) instead of 0.
    pub fn observe_from(&mut self, partition: i32, now_ms: i64, high_watermark: i64, lag: i64, seed: f64) -> f64 {
        let backlog = lag.max(0) as f64 / self.params.backlog_horizon_s.max(1e-3);
        let rate = match self.last.get(&partition) {
            Some(l) if now_ms > l.at_ms && high_watermark >= 0 => {
                let dt = (now_ms - l.at_ms) as f64;
                let inst = (high_watermark - l.high_watermark).max(0) as f64 * 1000.0 / dt;
                let alpha = 1.0 - (-dt / self.params.smoothing_ms.max(1) as f64).exp();
                l.rate + alpha * (inst - l.rate)
            }
            Some(l) => l.rate,
            None => if seed.is_finite() { seed.max(0.0) } else { 0.0 },
        };
        if high_watermark >= 0 {
            self.last.insert(partition, Last { at_ms: now_ms, high_watermark, rate });
        }
        rate + backlog
    }

    /// Forgets partitions not in `owned` (moved away: their next owner measures them).
    pub fn retain(&mut self, owned: &[i32]) {
        self.last.retain(|p, _| owned.contains(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_converges_and_a_backlog_adds_to_it() {
        let mut m = LoadMeter::new(LoadParams { smoothing_ms: 5_000, backlog_horizon_s: 10.0 });
        assert_eq!(m.observe(0, 0, 0, 0), 0.0);
        let mut load = 0.0;
        for s in 1..=60 {
            load = m.observe(0, s * 1000, s * 100, 0);
        }
        assert!((load - 100.0).abs() < 1.0, "{load}");
        // A backlog of 1000 over a 10 s horizon: 100 records/s more.
        let with_backlog = m.observe(0, 61_000, 6_100, 1_000);
        assert!((with_backlog - 200.0).abs() < 2.0, "{with_backlog}");
    }

    #[test]
    fn a_burst_is_smoothed_and_partitions_are_independent() {
        let mut m = LoadMeter::new(LoadParams { smoothing_ms: 30_000, backlog_horizon_s: 60.0 });
        m.observe(1, 0, 0, 0);
        let burst = m.observe(1, 1_000, 10_000, 0);
        assert!(burst < 10_000.0 * 0.05, "one second of a burst moves the smoothed rate little: {burst}");
        assert_eq!(m.observe(2, 1_000, 5, 0), 0.0, "another partition starts from zero");
        // Unknown watermark (-1): the rate stays, nothing breaks.
        assert_eq!(m.observe(1, 2_000, -1, -1), burst);
        m.retain(&[2]);
        assert_eq!(m.observe(1, 3_000, 20_000, 0), 0.0, "forgotten after moving away");
        // A partition taken over starts from its previous owner's load, then smooths.
        assert_eq!(m.observe_from(7, 0, 100, 0, 40.0), 40.0);
        let next = m.observe_from(7, 1_000, 140, 0, 999.0);
        assert!((next - 40.0).abs() < 1e-9, "the seed only counts without history: {next}");
    }
}
