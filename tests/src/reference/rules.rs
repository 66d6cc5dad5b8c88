//! Rule-based attribution weights (attribution.md, "Models"), written independently
//! of `touchline_actors::domain::models` so that the two cross-check each other.

/// A parsed, validated model of a reference query.
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    FirstTouch,
    LastTouch,
    Linear,
    TimeDecay {
        half_life_secs: f64,
    },
    PositionBased,
    JCurve,
    InverseJ,
    LastNonDirect,
    /// Weights `F, M, L` normalized to sum 1.
    Custom([f64; 3]),
    /// Each distinct key of the path gets 1 (handled by the caller).
    Participation,
    /// Data-driven (handled by the caller over the query's paths, `super::datadriven`).
    Markov,
    Shapley,
}

impl Model {
    /// Parses a model name; `Err` is the message of a `bad_request`.
    pub fn parse(name: &str, weights: Option<[f64; 3]>, half_life_hours: f64) -> Result<Model, String> {
        Ok(match name {
            "first_touch" => Model::FirstTouch,
            "last_touch" => Model::LastTouch,
            "linear" => Model::Linear,
            "time_decay" => {
                if !(half_life_hours.is_finite() && half_life_hours > 0.0) {
                    return Err(format!(
                        "half_life_hours: must be a positive number, got {half_life_hours}"
                    ));
                }
                Model::TimeDecay {
                    half_life_secs: half_life_hours * 3600.0,
                }
            }
            "position_based" => Model::PositionBased,
            "j_curve" => Model::JCurve,
            "inverse_j" => Model::InverseJ,
            "last_non_direct" => Model::LastNonDirect,
            "custom" => {
                let Some(w) = weights else {
                    return Err("weights: required for model custom (e.g. weights=30,40,30)".to_string());
                };
                if w.iter().any(|x| !x.is_finite() || *x < 0.0) {
                    return Err(format!("weights: must be finite and non-negative, got {w:?}"));
                }
                let sum: f64 = w.iter().sum();
                if sum <= 0.0 {
                    return Err("weights: must not all be zero".to_string());
                }
                Model::Custom([w[0] / sum, w[1] / sum, w[2] / sum])
            }
            "participation" => Model::Participation,
            "markov" => Model::Markov,
            "shapley" => Model::Shapley,
            other => return Err(format!("model: unknown model `{other}`")),
        })
    }
}

/// First / middle / last shape: n=1 → 1; n=2 → `two`; n≥3 → first, mid/(n−2) each, last.
fn shape(n: usize, first: f64, mid: f64, last: f64, two: (f64, f64)) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![1.0],
        2 => vec![two.0, two.1],
        _ => {
            let mut w = vec![mid / (n - 2) as f64; n];
            w[0] = first;
            w[n - 1] = last;
            w
        }
    }
}

fn one_hot(n: usize, i: usize) -> Vec<f64> {
    let mut w = vec![0.0; n];
    w[i] = 1.0;
    w
}

/// The weights of a non-empty path. `ages[i]` = `C.ts − T_i.ts` in seconds (≥ 0),
/// `direct[i]` whether touch `i` is on the `direct` channel. Sums to 1.
/// `Participation`, `Markov` and `Shapley` are the caller's business (they return all-zero).
pub fn weights(model: &Model, ages: &[f64], direct: &[bool]) -> Vec<f64> {
    let n = ages.len();
    if n == 0 {
        return Vec::new();
    }
    match model {
        Model::FirstTouch => one_hot(n, 0),
        Model::LastTouch => one_hot(n, n - 1),
        Model::Linear => vec![1.0 / n as f64; n],
        Model::TimeDecay { half_life_secs } => {
            // Relative to the youngest touch so nothing underflows; normalization cancels it.
            let youngest = ages.iter().copied().fold(f64::INFINITY, f64::min);
            let raw: Vec<f64> = ages.iter().map(|a| (-(a - youngest) / half_life_secs).exp2()).collect();
            let sum: f64 = raw.iter().sum();
            raw.into_iter().map(|x| x / sum).collect()
        }
        Model::PositionBased => shape(n, 0.4, 0.2, 0.4, (0.5, 0.5)),
        Model::JCurve => shape(n, 0.2, 0.2, 0.6, (0.25, 0.75)),
        Model::InverseJ => shape(n, 0.6, 0.2, 0.2, (0.75, 0.25)),
        Model::LastNonDirect => one_hot(n, direct.iter().rposition(|d| !d).unwrap_or(n - 1)),
        Model::Custom([f, m, l]) => {
            // Two touches with F = L = 0 have no defined split: halve it.
            let two = if f + l > 0.0 {
                (f / (f + l), l / (f + l))
            } else {
                (0.5, 0.5)
            };
            shape(n, *f, *m, *l, two)
        }
        Model::Participation | Model::Markov | Model::Shapley => vec![0.0; n],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn table_shapes() {
        let d = [false; 4];
        let ages = [40.0, 30.0, 20.0, 10.0];
        assert!(close(&weights(&Model::FirstTouch, &ages, &d), &[1.0, 0.0, 0.0, 0.0]));
        assert!(close(&weights(&Model::LastTouch, &ages, &d), &[0.0, 0.0, 0.0, 1.0]));
        assert!(close(&weights(&Model::Linear, &ages, &d), &[0.25; 4]));
        assert!(close(&weights(&Model::PositionBased, &ages, &d), &[0.4, 0.1, 0.1, 0.4]));
        assert!(close(&weights(&Model::JCurve, &ages, &d), &[0.2, 0.1, 0.1, 0.6]));
        assert!(close(&weights(&Model::InverseJ, &ages, &d), &[0.6, 0.1, 0.1, 0.2]));
        assert!(close(&weights(&Model::PositionBased, &ages[..2], &d[..2]), &[0.5, 0.5]));
        assert!(close(&weights(&Model::JCurve, &ages[..2], &d[..2]), &[0.25, 0.75]));
        assert!(close(&weights(&Model::InverseJ, &ages[..2], &d[..2]), &[0.75, 0.25]));
        assert!(close(&weights(&Model::InverseJ, &ages[..1], &d[..1]), &[1.0]));
        let custom = Model::parse("custom", Some([30.0, 40.0, 30.0]), 168.0).unwrap();
        assert!(close(&weights(&custom, &ages, &d), &[0.3, 0.2, 0.2, 0.3]));
        assert!(close(&weights(&custom, &ages[..2], &d[..2]), &[0.5, 0.5]));
        let custom = Model::parse("custom", Some([1.0, 0.0, 3.0]), 168.0).unwrap();
        assert!(close(&weights(&custom, &ages[..2], &d[..2]), &[0.25, 0.75]));
        assert!(Model::parse("custom", None, 168.0).is_err());
        assert!(Model::parse("nope", None, 168.0).is_err());
    }

    #[test]
    fn time_decay_halves_per_half_life() {
        let m = Model::parse("time_decay", None, 1.0).unwrap();
        let w = weights(&m, &[7200.0, 3600.0, 0.0], &[false; 3]);
        assert!(close(&w, &[1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0]));
        // Very old touches do not underflow into a 0/0.
        let w = weights(&m, &[1e9, 1e9], &[false; 2]);
        assert!(close(&w, &[0.5, 0.5]));
    }

    #[test]
    fn last_non_direct_skips_direct() {
        let ages = [3.0, 2.0, 1.0];
        assert!(close(
            &weights(&Model::LastNonDirect, &ages, &[false, false, true]),
            &[0.0, 1.0, 0.0]
        ));
        assert!(close(
            &weights(&Model::LastNonDirect, &ages, &[true, true, true]),
            &[0.0, 0.0, 1.0]
        ));
    }
}
