//! Load-based placement, the pure part (no I/O): which alive node owns each
//! partition of the events topic, given the partitions' measured loads and the
//! placement in force (`cluster.placement = "load"`, docs/architecture.md).
//!
//! - [`place`]: partitions whose owner is gone (or that never had one) go, the
//!   heaviest first, to the node carrying the least load (fewest partitions,
//!   then smallest id, on a tie); then, up to `max_moves` times, while the
//!   heaviest node carries more than `threshold` × the mean, the one partition
//!   whose move from it to the lightest node lowers the pair's maximum most is
//!   moved; a heaviest node no move can lower (a single heavy partition)
//!   is set aside and the others are balanced around their own mean. Each
//!   move strictly lowers the sum of squared node loads, so it ends;
//!   with moves unbounded the heaviest node ends at most
//!   `max(threshold × mean, mean + heaviest partition)`.
//! - [`Planner`]: when to call it. A change of the alive nodes (a join, a
//!   leave, an orphan) is placed at once with moves unbounded; a load imbalance
//!   only once it has lasted `persist_ms`, with at most `max_moves` moves — so
//!   a burst does not shuffle partitions, and every move (a restore on its new
//!   owner) buys a lasting gain.
//!
//! Same inputs, same answer on every node: nodes are sorted and every tie is
//! broken by partition number or node id.

use std::collections::BTreeMap;

/// A partition's weight is its load plus this fraction of the mean partition
/// load (plus a floor): partitions without load are then spread by count.
const COUNT_WEIGHT: f64 = 1e-3;

/// Tuning of the placement (`cluster.placement_*` keys).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Load moves happen only while the heaviest node carries more than this
    /// multiple of the mean node load (≥ 1).
    pub threshold: f64,
    /// Load moves per recomputation at most (orphans are always placed).
    pub max_moves: usize,
    /// How long an imbalance must last before load moves, ms.
    pub persist_ms: i64,
}

impl Default for Params {
    fn default() -> Self {
        Params { threshold: 1.15, max_moves: 2, persist_ms: 30_000 }
    }
}

/// What a placement is computed from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Input {
    /// Partitions of the events topic.
    pub partitions: i32,
    /// The alive nodes (any order, duplicates ignored).
    pub nodes: Vec<String>,
    /// The placement in force: partition → owner (owners not alive are ignored).
    pub current: BTreeMap<i32, String>,
    /// Measured load per partition (e.g. records/s, smoothed); absent = 0.
    pub load: BTreeMap<i32, f64>,
}

impl Input {
    fn sorted_nodes(&self) -> Vec<String> {
        let mut n = self.nodes.clone();
        n.sort();
        n.dedup();
        n
    }

    /// Each partition's weight: its load (negative or non-finite counts as 0)
    /// plus a small share so that count breaks ties between idle partitions.
    fn weights(&self) -> Vec<f64> {
        let n = self.partitions.max(0) as usize;
        let raw: Vec<f64> = (0..n as i32).map(|p| self.load.get(&p).copied().filter(|l| l.is_finite() && *l > 0.0).unwrap_or(0.0)).collect();
        let mean = raw.iter().sum::<f64>() / n.max(1) as f64;
        let extra = COUNT_WEIGHT * mean + 1e-9;
        raw.into_iter().map(|l| l + extra).collect()
    }
}

/// Marks a partition without an alive owner in an owner vector.
const ORPHAN: usize = usize::MAX;

/// The owner (node index, or [`ORPHAN`]) of each partition in `input.current`.
fn owner_indices(input: &Input, nodes: &[String]) -> Vec<usize> {
    (0..input.partitions.max(0)).map(|p| input.current.get(&p).and_then(|o| nodes.binary_search(o).ok()).unwrap_or(ORPHAN)).collect()
}

/// Load and partition count per node (by index) of `owners` under `weights`.
fn node_loads(owners: &[usize], weights: &[f64], nodes: usize) -> (Vec<f64>, Vec<usize>) {
    let (mut load, mut count) = (vec![0.0; nodes], vec![0usize; nodes]);
    for (p, &o) in owners.iter().enumerate().filter(|(_, o)| **o != ORPHAN) {
        load[o] += weights[p];
        count[o] += 1;
    }
    (load, count)
}

/// The heaviest node's load over the mean node load (1 = perfectly even; 0
/// without nodes or partitions). Owners not among `input.nodes` count as absent.
pub fn imbalance(input: &Input) -> f64 {
    let nodes = input.sorted_nodes();
    let weights = input.weights();
    let (load, _) = node_loads(&owner_indices(input, &nodes), &weights, nodes.len());
    let total: f64 = weights.iter().sum();
    if nodes.is_empty() || total <= 0.0 {
        return 0.0;
    }
    load.iter().copied().fold(0.0, f64::max) / (total / nodes.len() as f64)
}

/// The owner of each partition (index = partition), or an empty vector without
/// nodes. See the module doc for the rule.
pub fn place(input: &Input, threshold: f64, max_moves: usize) -> Vec<String> {
    let nodes = input.sorted_nodes();
    if nodes.is_empty() {
        return Vec::new();
    }
    let weights = input.weights();
    let n = weights.len();
    let mut owners = owner_indices(input, &nodes);
    let mut orphans: Vec<usize> = (0..n).filter(|&p| owners[p] == ORPHAN).collect();
    orphans.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    let (mut load, mut count) = node_loads(&owners, &weights, nodes.len());
    for p in orphans {
        let to = (0..nodes.len()).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(count[a].cmp(&count[b])).then(a.cmp(&b))).unwrap_or(0);
        owners[p] = to;
        load[to] += weights[p];
        count[to] += 1;
    }
    let total: f64 = weights.iter().sum();
    let tiny = total * 1e-12;
    let cap = n.saturating_mul(nodes.len()).max(1);
    // Nodes still balanced among; one whose load no move can lower (e.g. a
    // single heavy partition) leaves the set, and the others are balanced
    // around their own mean.
    let mut open = vec![true; nodes.len()];
    let mut moves = 0;
    while moves < max_moves.min(cap) {
        let set: Vec<usize> = (0..nodes.len()).filter(|&i| open[i]).collect();
        let mean = set.iter().map(|&i| load[i]).sum::<f64>() / set.len().max(1) as f64;
        let h = set.iter().copied().max_by(|&a, &b| load[a].total_cmp(&load[b]).then(b.cmp(&a))).unwrap_or(0);
        let l = set.iter().copied().min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b))).unwrap_or(0);
        if set.len() < 2 || load[h] <= threshold.max(1.0) * mean + tiny || h == l {
            break;
        }
        let best = (0..n)
            .filter(|&p| owners[p] == h && load[l] + weights[p] < load[h] - tiny)
            .min_by(|&a, &b| {
                let after = |p: usize| (load[h] - weights[p]).max(load[l] + weights[p]);
                after(a).total_cmp(&after(b)).then(a.cmp(&b))
            });
        let Some(p) = best else {
            open[h] = false;
            continue;
        };
        owners[p] = l;
        load[h] -= weights[p];
        load[l] += weights[p];
        moves += 1;
    }
    owners.into_iter().map(|o| nodes[o].clone()).collect()
}

/// Decides when to re-place (see the module doc); one per node, fed the same
/// inputs each tick.
#[derive(Clone, Debug, Default)]
pub struct Planner {
    pub params: Params,
    /// Since when (ms) the placement in force has been over the threshold.
    imbalanced_since: Option<i64>,
}

impl Planner {
    pub fn new(params: Params) -> Planner {
        Planner { params, imbalanced_since: None }
    }

    /// The placement to be in force at `now_ms`: `input.current` unchanged
    /// unless a node joined or left (the alive nodes differ from the owners'),
    /// a partition has no alive owner, or an imbalance over the threshold has
    /// lasted `persist_ms`.
    pub fn decide(&mut self, now_ms: i64, input: &Input) -> Vec<String> {
        let nodes = input.sorted_nodes();
        let owners: std::collections::BTreeSet<&String> = input.current.values().collect();
        let orphan = (0..input.partitions).any(|p| input.current.get(&p).is_none_or(|o| nodes.binary_search(o).is_err()));
        let idle_node = nodes.iter().any(|n| !owners.contains(n)) && input.partitions as usize >= nodes.len();
        if orphan || idle_node {
            self.imbalanced_since = None;
            return place(input, self.params.threshold, usize::MAX);
        }
        if imbalance(input) <= self.params.threshold.max(1.0) {
            self.imbalanced_since = None;
            return place(input, self.params.threshold, 0);
        }
        let since = *self.imbalanced_since.get_or_insert(now_ms);
        if now_ms - since < self.params.persist_ms {
            return place(input, self.params.threshold, 0);
        }
        self.imbalanced_since = None;
        place(input, self.params.threshold, self.params.max_moves)
    }
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
