//! Reading a person's touchpoints for a conversion's lookback window (cut at
//! the tenant's retention horizon).

use crate::domain::retention::clamp_from;
use crate::domain::Ts;
use crate::state::{key, TouchRec};
use touchline_storage::{StorageError, Store};

/// Touchpoints of `person` with `conv_ts - lookback_secs <= ts <= conv_ts` and
/// not behind the retention `horizon`, in (ts, event_id) order.
pub fn lookback_touches(store: &Store, p: u16, tenant: &str, person: u64, conv_ts: Ts, lookback_secs: i64, horizon: Option<Ts>) -> Result<Vec<TouchRec>, StorageError> {
    let start = key::touch_at(p, tenant, person, clamp_from(conv_ts.minus_secs(lookback_secs), horizon));
    let end = key::touch_at(p, tenant, person, Ts::from_nanos(conv_ts.as_nanos() + 1));
    let mut out = Vec::new();
    store.scan_as::<TouchRec>(&start, &end, |_, t| {
        out.push(t);
        true
    })?;
    Ok(out)
}

/// [`lookback_touches`] of several persons (a final person's members),
/// merged in (ts, event_id) order.
pub fn lookback_touches_of(store: &Store, p: u16, tenant: &str, persons: &[u64], conv_ts: Ts, lookback_secs: i64, horizon: Option<Ts>) -> Result<Vec<TouchRec>, StorageError> {
    let mut out = Vec::new();
    for person in persons {
        out.extend(lookback_touches(store, p, tenant, *person, conv_ts, lookback_secs, horizon)?);
    }
    if persons.len() > 1 {
        out.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
    }
    Ok(out)
}
