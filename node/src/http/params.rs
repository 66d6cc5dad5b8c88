//! Query-string parsing for the HTTP surface: form-urlencoded pairs, typed
//! parameters with 400s that name the parameter, and unknown-parameter checks.

use super::error::ApiError;
use std::collections::BTreeMap;
use touchline_actors::domain::models::{parse_custom_weights, Model, ModelParams};
use touchline_actors::domain::timestamp::parse_rfc3339;
use touchline_actors::domain::tracking::form_decode;
use touchline_actors::domain::{GroupBy, Ts};
use touchline_actors::query::attribution::AttributionQuery;

/// `from`/`to` default to this many days before now (http-api.md).
pub const DEFAULT_RANGE_DAYS: i64 = 30;

/// The largest `half_life_hours` (larger ones are infinite in seconds).
pub const MAX_HALF_LIFE_HOURS: f64 = 1e300;

#[derive(Debug)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `a=1&b=2`; a repeated parameter is a 400 (ambiguous).
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut m = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (form_decode(k).into_owned(), form_decode(v).into_owned());
            if !allowed.contains(&k.as_str()) {
                let allowed = if allowed.is_empty() { "this route takes none".to_string() } else { format!("allowed: {}", allowed.join(", ")) };
                return Err(ApiError::param(&k, format!("unknown parameter ({allowed})")));
            }
            if m.insert(k.clone(), v).is_some() {
                return Err(ApiError::param(&k, "given more than once"));
            }
        }
        Ok(Params(m))
    }

    pub fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn ts(&self, k: &str) -> Result<Option<Ts>, ApiError> {
        match self.str(k) {
            None => Ok(None),
            // An unencoded `+hh:mm` offset arrives as a space after form decoding:
            // accept `... 00:00:00 02:00` as `+02:00` (a date-time separator space
            // is earlier in the string and stays). A date alone is midnight UTC.
            Some(v) => parse_rfc3339(v)
                .or_else(|| v.rfind(' ').filter(|i| *i > 10).and_then(|i| parse_rfc3339(&format!("{}+{}", &v[..i], &v[i + 1..]))))
                .or_else(|| is_date(v).then(|| parse_rfc3339(&format!("{v}T00:00:00Z"))).flatten())
                .map(Some)
                .ok_or_else(|| ApiError::param(k, format!("not an RFC 3339 timestamp or a date (YYYY-MM-DD): {v:?}"))),
        }
    }

    pub fn int(&self, k: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.str(k) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::param(k, format!("must be an integer in {min}..={max}, got {v:?}"))),
            },
        }
    }

    pub fn positive_f64(&self, k: &str) -> Result<Option<f64>, ApiError> {
        match self.str(k) {
            None => Ok(None),
            Some(v) => match v.parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 => Ok(Some(n)),
                _ => Err(ApiError::param(k, format!("must be a positive number, got {v:?}"))),
            },
        }
    }

    pub fn model(&self, default: Model) -> Result<Model, ApiError> {
        match self.str("model") {
            None => Ok(default),
            Some(v) => Model::parse(v).ok_or_else(|| {
                let all: Vec<&str> = Model::ALL.iter().map(|m| m.as_str()).collect();
                ApiError::param("model", format!("unknown model {v:?} (one of {})", all.join(", ")))
            }),
        }
    }

    /// `identity=all|deterministic` (attribution.md, Probabilistic links 6).
    pub fn identity(&self) -> Result<touchline_actors::query::linking::IdentityView, ApiError> {
        match self.str("identity") {
            None => Ok(Default::default()),
            Some(v) => touchline_actors::query::linking::IdentityView::parse(v)
                .ok_or_else(|| ApiError::param("identity", format!("unknown identity view {v:?} (one of all, deterministic)"))),
        }
    }

    pub fn group_by(&self, key: &str) -> Result<GroupBy, ApiError> {
        match self.str(key) {
            None => Ok(GroupBy::Channel),
            Some(v) => GroupBy::parse(v).ok_or_else(|| {
                let all: Vec<&str> = GroupBy::ALL.iter().map(|g| g.as_str()).collect();
                ApiError::param(key, format!("unknown grouping {v:?} (one of {})", all.join(", ")))
            }),
        }
    }

    pub fn currency(&self) -> Result<Option<String>, ApiError> {
        match self.str("currency") {
            None => Ok(None),
            Some(v) if v.len() == 3 && v.bytes().all(|b| b.is_ascii_uppercase()) => Ok(Some(v.to_string())),
            Some(v) => Err(ApiError::param("currency", format!("must match [A-Z]{{3}}, got {v:?}"))),
        }
    }

    /// `half_life_hours` and `weights` into model parameters.
    pub fn model_params(&self) -> Result<ModelParams, ApiError> {
        let mut p = ModelParams::default();
        if let Some(h) = self.positive_f64("half_life_hours")? {
            if h > MAX_HALF_LIFE_HOURS {
                return Err(ApiError::param("half_life_hours", format!("must be at most {MAX_HALF_LIFE_HOURS:e}, got {h:e}")));
            }
            p.half_life_secs = h * 3600.0;
        }
        if let Some(w) = self.str("weights") {
            p.custom_weights = Some(parse_custom_weights(w).map_err(|e| ApiError::param("weights", e))?);
        }
        Ok(p)
    }

    /// The attribution query of these parameters over `[from, to)`: `group_by`
    /// from the parameter unless fixed by the endpoint.
    pub fn attribution_query(&self, from: Ts, to: Ts, fixed_group_by: Option<GroupBy>, default_lookback_days: i64) -> Result<AttributionQuery, ApiError> {
        let lookback_days = self.int("lookback_days", 0, 3650)?.unwrap_or(default_lookback_days);
        let group_by = match fixed_group_by {
            Some(g) => g,
            None => self.group_by("group_by")?,
        };
        Ok(AttributionQuery { from, to, group_by, lookback_days, params: self.model_params()?, currency: self.currency()?, horizon: None })
    }

    /// `[from, to)`, default all time (every representable event time): `to`
    /// is the last nanosecond of year 9999, so it prints as RFC 3339.
    pub fn range_all(&self) -> Result<(Ts, Ts), ApiError> {
        use touchline_actors::domain::timestamp::{END_EPOCH_MILLIS, MIN_EPOCH_MILLIS};
        let to = self.ts("to")?.unwrap_or_else(|| Ts::from_nanos(END_EPOCH_MILLIS as i128 * 1_000_000 - 1));
        let from = self.ts("from")?.unwrap_or_else(|| Ts::from_millis(MIN_EPOCH_MILLIS));
        ordered(from, to)?;
        Ok((from, to))
    }

    /// `[from, to)`, default the last `default_days` before now; bounded length.
    pub fn range(&self, default_days: i64, max_days: i64) -> Result<(Ts, Ts), ApiError> {
        let to = self.ts("to")?.unwrap_or_else(Ts::now);
        let from = self.ts("from")?.unwrap_or_else(|| to.minus_secs(default_days * 86_400));
        ordered(from, to)?;
        if to.secs_since(from) > (max_days * 86_400) as f64 {
            return Err(ApiError::param("to", format!("range longer than {max_days} days")));
        }
        Ok((from, to))
    }
}

/// `YYYY-MM-DD`, digits in place (the calendar is checked by the parse).
fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn ordered(from: Ts, to: Ts) -> Result<(), ApiError> {
    if from > to {
        return Err(ApiError::param("from", "must not be after `to`"));
    }
    Ok(())
}

/// The `custom` model is a 400 without `weights` (attribution.md).
pub fn require_weights(model: Model, params: &ModelParams) -> Result<(), ApiError> {
    if model == Model::Custom && params.custom_weights.is_none() {
        return Err(ApiError::param("weights", "the custom model needs weights=F,M,L"));
    }
    Ok(())
}

/// Percent-decodes one path segment (no `+` handling in paths).
pub fn path_segment(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    form_decode(&s.replace('+', "%2B")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_parameters() {
        let p = Params::parse(Some("model=linear&from=2026-01-01T00%3A00%3A00%2B01%3A00"), &["model", "from"]).unwrap();
        assert_eq!(p.model(Model::FirstTouch).unwrap(), Model::Linear);
        assert_eq!(p.ts("from").unwrap().unwrap().to_string(), "2025-12-31T23:00:00Z");
        let p = Params::parse(Some("from=2026-01-01T00:00:00+01:00"), &["from"]).unwrap();
        assert_eq!(p.ts("from").unwrap().unwrap().to_string(), "2025-12-31T23:00:00Z");
        let e = Params::parse(Some("modle=x"), &["model"]).unwrap_err();
        assert!(e.message.contains("modle"));
        let e = Params::parse(Some("x=1"), &[]).unwrap_err();
        assert!(e.message.contains("takes none"), "{}", e.message);
        let e = Params::parse(Some("model=a&model=b"), &["model"]).unwrap_err();
        assert!(e.message.contains("more than once"));
        let p = Params::parse(Some("lookback_days=0"), &["lookback_days"]).unwrap();
        assert!(p.int("lookback_days", 1, 3650).unwrap_err().message.contains("lookback_days"));
        let p = Params::parse(Some("from=yesterday"), &["from"]).unwrap();
        assert!(p.range(30, 3660).unwrap_err().message.contains("`from`"));
    }

    #[test]
    fn a_half_life_stays_finite_in_seconds() {
        let p = Params::parse(Some("half_life_hours=1e308"), &["half_life_hours"]).unwrap();
        assert!(p.model_params().unwrap_err().message.contains("half_life_hours"));
        let p = Params::parse(Some("half_life_hours=1e300"), &["half_life_hours"]).unwrap();
        assert!(p.model_params().unwrap().half_life_secs.is_finite());
    }

    #[test]
    fn a_date_alone_is_midnight_utc() {
        let p = Params::parse(Some("from=2026-10-01&to=2026-11-01"), &["from", "to"]).unwrap();
        let (from, to) = p.range(30, 3660).unwrap();
        assert_eq!((from.to_string(), to.to_string()), ("2026-10-01T00:00:00Z".to_string(), "2026-11-01T00:00:00Z".to_string()));
        for bad in ["2026-13-01", "2026-02-30", "2026-1-01", "20261001", "2026-10-01x"] {
            let p = Params::parse(Some(&format!("from={bad}")), &["from"]).unwrap();
            let e = p.ts("from").unwrap_err().message;
            assert!(e.contains("`from`") && e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
    }

    #[test]
    fn path_segments_keep_plus() {
        assert_eq!(path_segment("a+b%20c"), "a+b c");
    }
}
