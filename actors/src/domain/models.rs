//! Rule-based attribution models (attribution.md, "Models"): pure functions from a
//! conversion's path to per-touchpoint weights and per-key credit.
//!
//! The caller builds the path: every touchpoint of the person within the lookback,
//! sorted by `(ts, event_id)`. Nothing here filters or sorts. The data-driven models
//! (`markov`, `shapley`) are named here so that the query layer has one model enum,
//! but they are computed over whole path sets by `datadriven`, not per conversion.

use crate::domain::event::{Channel, Ts, DIRECT_KEY};
use std::collections::HashMap;
use std::fmt;

/// Every model of attribution.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    FirstTouch,
    LastTouch,
    Linear,
    TimeDecay,
    PositionBased,
    JCurve,
    InverseJ,
    LastNonDirect,
    Custom,
    Participation,
    Markov,
    Shapley,
}

impl Model {
    pub const ALL: [Model; 12] = [
        Model::FirstTouch,
        Model::LastTouch,
        Model::Linear,
        Model::TimeDecay,
        Model::PositionBased,
        Model::JCurve,
        Model::InverseJ,
        Model::LastNonDirect,
        Model::Custom,
        Model::Participation,
        Model::Markov,
        Model::Shapley,
    ];

    /// The model's name in queries and responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::FirstTouch => "first_touch",
            Model::LastTouch => "last_touch",
            Model::Linear => "linear",
            Model::TimeDecay => "time_decay",
            Model::PositionBased => "position_based",
            Model::JCurve => "j_curve",
            Model::InverseJ => "inverse_j",
            Model::LastNonDirect => "last_non_direct",
            Model::Custom => "custom",
            Model::Participation => "participation",
            Model::Markov => "markov",
            Model::Shapley => "shapley",
        }
    }

    /// Exact (case-sensitive) inverse of [`Model::as_str`].
    pub fn parse(s: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// `markov` and `shapley`: computed over all paths of a query (`datadriven`),
    /// not conversion by conversion.
    pub fn is_data_driven(self) -> bool {
        matches!(self, Model::Markov | Model::Shapley)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-query model parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelParams {
    /// `time_decay` half-life in seconds (query `half_life_hours` × 3600). Should be
    /// `> 0`; a non-positive or NaN half-life is treated as its limit `0+` (all
    /// weight, shared equally, on the latest touchpoints); `+inf` gives `linear`.
    pub half_life_secs: f64,
    /// `custom` weights `[F, M, L]` as given by the query (not yet normalized).
    /// `None` means the query gave none: the query layer must answer 400
    /// `bad_request` before calling [`weights`], which returns no weights then.
    pub custom_weights: Option<[f64; 3]>,
}

/// Default `time_decay` half-life: 7 days.
pub const DEFAULT_HALF_LIFE_SECS: f64 = 7.0 * 24.0 * 3600.0;

impl Default for ModelParams {
    fn default() -> ModelParams {
        ModelParams { half_life_secs: DEFAULT_HALF_LIFE_SECS, custom_weights: None }
    }
}

/// Parses the `custom` query value `F,M,L` (e.g. `30,40,30`; a leading `weights=`
/// is tolerated, blanks around numbers are ignored): three finite, non-negative
/// numbers with a positive, finite sum. The error text names the problem.
pub fn parse_custom_weights(s: &str) -> Result<[f64; 3], String> {
    let body = s.trim();
    let body = body.strip_prefix("weights=").unwrap_or(body);
    let parts: Vec<&str> = body.split(',').collect();
    if parts.len() != 3 {
        return Err(format!(
            "weights must be three comma-separated numbers F,M,L (first, middle, last), got {} part{} in `{s}`",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        ));
    }
    const NAMES: [&str; 3] = ["first (F)", "middle (M)", "last (L)"];
    let mut out = [0.0f64; 3];
    for (i, p) in parts.iter().enumerate() {
        let p = p.trim();
        let v: f64 = p
            .parse()
            .map_err(|_| format!("weight {} `{p}` is not a number", NAMES[i]))?;
        if !v.is_finite() {
            return Err(format!("weight {} `{p}` is not finite", NAMES[i]));
        }
        if v < 0.0 {
            return Err(format!("weight {} `{p}` is negative", NAMES[i]));
        }
        out[i] = v + 0.0; // -0 → +0
    }
    let sum = out[0] + out[1] + out[2];
    if !sum.is_finite() {
        return Err("weights are too large: their sum is not finite".to_string());
    }
    if sum <= 0.0 {
        return Err("weights sum to 0: at least one of F, M, L must be positive".to_string());
    }
    Ok(out)
}

/// One touchpoint of a conversion's path (already filtered to the lookback and
/// sorted by `(ts, event_id)` by the caller).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathTouch<'a> {
    pub ts: Ts,
    pub channel: Channel,
    /// The touchpoint's grouping key under the query's `group_by`.
    pub key: &'a str,
    pub event_id: &'a str,
}

/// First/last/middle shares for `n ≥ 3` paths, and first/last for `n = 2`.
fn shaped(n: usize, first: f64, middle: f64, last: f64, two: (f64, f64)) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![1.0],
        2 => vec![two.0, two.1],
        _ => {
            let mid = middle / (n - 2) as f64;
            let mut w = vec![mid; n];
            w[0] = first;
            w[n - 1] = last;
            w
        }
    }
}

/// `time_decay`: `w_i ∝ 2^(−(C.ts − T_i.ts)/h)`. Computed relative to the latest
/// touchpoint (`2^(−(T_max − T_i)/h)`; the common factor `2^(−(C − T_max)/h)`
/// cancels in the normalization), so it never underflows to an all-zero path.
fn time_decay(path: &[PathTouch], half_life_secs: f64) -> Vec<f64> {
    let latest = path.iter().map(|t| t.ts).max().expect("non-empty path");
    let raw: Vec<f64> = if half_life_secs > 0.0 {
        path.iter()
            .map(|t| (-(latest.secs_since(t.ts)) / half_life_secs).exp2())
            .collect()
    } else {
        // Limit h → 0+: only the latest touchpoints keep weight.
        path.iter().map(|t| if t.ts == latest { 1.0 } else { 0.0 }).collect()
    };
    // The latest touch has raw weight exactly 1, so the sum is in [1, n].
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / sum).collect()
}

/// `custom` with raw weights `[F, M, L]`; `None` when they are unusable.
fn custom(n: usize, fml: [f64; 3]) -> Option<Vec<f64>> {
    let [f, m, l] = fml;
    if !(f.is_finite() && m.is_finite() && l.is_finite() && f >= 0.0 && m >= 0.0 && l >= 0.0) {
        return None;
    }
    let total = f + m + l;
    if !(total > 0.0 && total.is_finite()) {
        return None;
    }
    Some(match n {
        0 => Vec::new(),
        1 => vec![1.0],
        2 => {
            let fl = f + l;
            if fl > 0.0 {
                vec![f / fl, l / fl]
            } else {
                // F = L = 0 (only M given): no first/last preference; split evenly.
                vec![0.5, 0.5]
            }
        }
        _ => {
            let mid = m / total / (n - 2) as f64;
            let mut w = vec![mid; n];
            w[0] = f / total;
            w[n - 1] = l / total;
            w
        }
    })
}

/// Per-touchpoint weights of one conversion under a rule model.
///
/// For a non-empty path the weights are `≥ 0` and sum to 1 (within rounding).
/// Returns an empty vector for an empty path (the caller credits `(direct)`), and
/// also — meaning "no weights" — for `participation` (not a weight model: see
/// [`credit_by_key`]), for the data-driven models, and for `custom` without usable
/// `custom_weights` (the query layer rejects that with a 400 first).
pub fn weights(model: Model, path: &[PathTouch], _conv_ts: Ts, params: &ModelParams) -> Vec<f64> {
    let n = path.len();
    if n == 0 {
        return Vec::new();
    }
    match model {
        Model::FirstTouch => {
            let mut w = vec![0.0; n];
            w[0] = 1.0;
            w
        }
        Model::LastTouch => {
            let mut w = vec![0.0; n];
            w[n - 1] = 1.0;
            w
        }
        Model::Linear => vec![1.0 / n as f64; n],
        Model::TimeDecay => time_decay(path, params.half_life_secs),
        Model::PositionBased => shaped(n, 0.4, 0.2, 0.4, (0.5, 0.5)),
        Model::JCurve => shaped(n, 0.2, 0.2, 0.6, (0.25, 0.75)),
        Model::InverseJ => shaped(n, 0.6, 0.2, 0.2, (0.75, 0.25)),
        Model::LastNonDirect => {
            let at = path.iter().rposition(|t| t.channel != Channel::Direct).unwrap_or(n - 1);
            let mut w = vec![0.0; n];
            w[at] = 1.0;
            w
        }
        Model::Custom => params.custom_weights.and_then(|fml| custom(n, fml)).unwrap_or_default(),
        Model::Participation | Model::Markov | Model::Shapley => Vec::new(),
    }
}

/// Merges `(key, amount)` pairs by key, keys in first-appearance order.
fn merge_by_key<'a>(pairs: impl Iterator<Item = (&'a str, f64)>, n: usize) -> Vec<(&'a str, f64)> {
    let mut out: Vec<(&'a str, f64)> = Vec::new();
    if n <= 32 {
        for (k, v) in pairs {
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some(e) => e.1 += v,
                None => out.push((k, v)),
            }
        }
    } else {
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        for (k, v) in pairs {
            match index.get(k) {
                Some(&i) => out[i].1 += v,
                None => {
                    index.insert(k, out.len());
                    out.push((k, v));
                }
            }
        }
    }
    out
}

/// One conversion's credit per grouping key: the sum of its weights on the
/// touchpoints with that key, keys in first-appearance order. Keys whose weights
/// are all zero (e.g. every key but the first under `first_touch`) are kept with
/// credit `0.0`; the report drops zero rows.
///
/// - An empty path gives `[(DIRECT_KEY, 1.0)]` under every model (participation and
///   the data-driven ones too: attribution.md, "A conversion with an empty path").
/// - `participation`: each distinct key gets exactly `1.0` (credits do not sum to 1).
/// - Otherwise the credits sum to 1 — except where [`weights`] gives none (`custom`
///   without weights, `markov`, `shapley`): then the result is empty.
pub fn credit_by_key<'a>(
    model: Model,
    path: &[PathTouch<'a>],
    conv_ts: Ts,
    params: &ModelParams,
) -> Vec<(&'a str, f64)> {
    if path.is_empty() {
        return vec![(DIRECT_KEY, 1.0)];
    }
    if model == Model::Participation {
        let mut out = merge_by_key(path.iter().map(|t| (t.key, 0.0)), path.len());
        for e in &mut out {
            e.1 = 1.0;
        }
        return out;
    }
    let w = weights(model, path, conv_ts, params);
    if w.len() != path.len() {
        return Vec::new();
    }
    merge_by_key(path.iter().zip(w).map(|(t, w)| (t.key, w)), path.len())
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
