//! Reading a person's touchpoints for a conversion's lookback window.

use crate::domain::Ts;
use crate::state::{key, TouchRec};
use touchline_storage::{codec, StorageError, Store};

/// Touchpoints of `person` with `conv_ts - lookback_secs <= ts <= conv_ts`, in
/// (ts, event_id) order.
pub fn lookback_touches(store: &Store, p: u16, tenant: &str, person: u64, conv_ts: Ts, lookback_secs: i64) -> Result<Vec<TouchRec>, StorageError> {
    let start = key::touch_at(p, tenant, person, conv_ts.minus_secs(lookback_secs));
    let end = key::touch_at(p, tenant, person, Ts::from_nanos(conv_ts.as_nanos() + 1));
    let mut out = Vec::new();
    let mut err = None;
    store.scan(&start, &end, |k, v| match codec::decode::<TouchRec>(k, v) {
        Ok(t) => {
            out.push(t);
            true
        }
        Err(e) => {
            err = Some(e);
            false
        }
    })?;
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
