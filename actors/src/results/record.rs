//! One record of the attribution results topic, as a pure function of a
//! conversion and its path: the JSON value a warehouse keeps per conversion
//! (docs/warehouse.md) and its 64-bit digest, which the publisher stores to
//! know what the topic last holds for the conversion.

use super::ResultsConfig;
use crate::domain::models::{credit_by_key, PathTouch};
use crate::domain::timestamp::format_rfc3339;
use crate::state::{ConvRec, TouchRec};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The record key: `{tenant}/{conversion event_id}`.
pub fn record_key(tenant: &str, event_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 1 + event_id.len());
    k.extend_from_slice(tenant.as_bytes());
    k.push(b'/');
    k.extend_from_slice(event_id.as_bytes());
    k
}

/// The record value of `conv`, a conversion of the person `person_id`, whose
/// path (its touchpoints within the lookback, in (ts, event_id) order, cut at
/// the retention horizon and by consent) is `path`.
pub fn record_value(cfg: &ResultsConfig, tenant: &str, person_id: &str, conv: &ConvRec, path: &[&TouchRec]) -> Vec<u8> {
    let mut credits = Map::new();
    for model in &cfg.models {
        let mut by_group = Map::new();
        for g in super::GROUPINGS {
            let touches: Vec<PathTouch> = path.iter().map(|t| PathTouch { ts: t.ts, channel: t.touch.channel, key: t.touch.key(g), event_id: &t.event_id }).collect();
            let mut rows = credit_by_key(*model, &touches, conv.ts, &cfg.params);
            rows.retain(|(_, w)| *w != 0.0);
            rows.sort_by(|a, b| a.0.cmp(b.0));
            let rows: Vec<Value> = rows.into_iter().map(|(key, weight)| json!({"key": key, "weight": weight})).collect();
            by_group.insert(g.as_str().to_string(), Value::Array(rows));
        }
        credits.insert(model.as_str().to_string(), Value::Object(by_group));
    }
    let v = json!({
        "tenant": tenant,
        "event_id": conv.event_id,
        "person_id": person_id,
        "timestamp": format_rfc3339(conv.ts),
        "value": conv.conversion.value,
        "currency": conv.conversion.currency,
        "lookback_days": cfg.lookback_days,
        "credits": credits,
    });
    serde_json::to_vec(&v).expect("a JSON value serializes")
}

/// The digest of a record value: the first 8 bytes of its SHA-256 (stable
/// across builds and versions, so a restored owner compares like the old one).
pub fn digest(value: &[u8]) -> u64 {
    let h = Sha256::digest(value);
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, ConversionInfo, Dims, TouchInfo, Ts};

    fn touch(secs: i64, id: &str, channel: Channel, campaign: Option<&str>) -> TouchRec {
        let dims = Dims { campaign: campaign.map(str::to_string), ..Dims::default() };
        TouchRec { event_id: id.into(), ts: Ts::new(secs, 0), customer_id: "c".into(), touch: TouchInfo { channel, interaction_type: "click".into(), dims } }
    }

    fn conv(secs: i64) -> ConvRec {
        ConvRec { event_id: "k1".into(), ts: Ts::new(secs, 0), customer_id: "c".into(), conversion: ConversionInfo { value: 10.0, currency: "EUR".into(), conversion_type: None }, late: false }
    }

    #[test]
    fn every_model_and_grouping_sums_to_one_and_an_empty_path_goes_to_direct() {
        let cfg = ResultsConfig::default();
        let a = touch(100, "a", Channel::Email, Some("spring"));
        let b = touch(200, "b", Channel::Search, None);
        let c = touch(300, "c", Channel::Email, Some("spring"));
        let v: Value = serde_json::from_slice(&record_value(&cfg, "acme", "customer_id:c", &conv(400), &[&a, &b, &c])).unwrap();
        assert_eq!(v["event_id"], "k1");
        assert_eq!(v["currency"], "EUR");
        assert_eq!(v["timestamp"], "1970-01-01T00:06:40Z");
        assert_eq!(v["lookback_days"], 30);
        for m in &cfg.models {
            for g in ["channel", "campaign"] {
                let rows = v["credits"][m.as_str()][g].as_array().unwrap();
                let sum: f64 = rows.iter().map(|r| r["weight"].as_f64().unwrap()).sum();
                assert!((sum - 1.0).abs() < 1e-12, "{m} {g}: {rows:?}");
            }
        }
        assert_eq!(v["credits"]["first_touch"]["channel"], json!([{"key": "email", "weight": 1.0}]));
        assert_eq!(v["credits"]["linear"]["campaign"].as_array().unwrap().len(), 2, "spring and (none)");
        let direct: Value = serde_json::from_slice(&record_value(&cfg, "acme", "p", &conv(400), &[])).unwrap();
        assert_eq!(direct["credits"]["linear"]["channel"], json!([{"key": crate::domain::DIRECT_KEY, "weight": 1.0}]));
    }

    #[test]
    fn the_digest_follows_the_value() {
        let cfg = ResultsConfig::default();
        let a = touch(100, "a", Channel::Email, None);
        let one = record_value(&cfg, "acme", "p", &conv(400), &[&a]);
        assert_eq!(digest(&one), digest(&record_value(&cfg, "acme", "p", &conv(400), &[&a])), "deterministic");
        assert_ne!(digest(&one), digest(&record_value(&cfg, "acme", "q", &conv(400), &[&a])), "another person");
        assert_eq!(record_key("acme", "k1"), b"acme/k1".to_vec());
    }
}
