//! The re-route seam (events.md, Transport): a record found on a partition that
//! is not its tenant's is produced again, original key, bytes and headers plus
//! `touchline.rerouted-from: <partition>/<offset>`, to the tenant's partition of
//! the events topic, and acknowledged before the batch that read it commits —
//! so a crash between the two re-routes it again (a repeat, which the
//! `event_id` dedup makes a no-op) and never loses it. The Kafka producer
//! implementation lives in `cluster`.

use crate::dlq::DlqFuture;

/// The header naming where a re-routed record was first read.
pub const REROUTED_FROM: &str = "touchline.rerouted-from";

/// One Kafka record header (a null value stays null).
pub type Header = (String, Option<Vec<u8>>);

/// A record to produce to its tenant's partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rerouted {
    /// The tenant's partition of the events topic.
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// The original headers followed by [`REROUTED_FROM`].
    pub headers: Vec<Header>,
}

impl Rerouted {
    /// The re-routed copy of a record read at `from_partition`/`from_offset`.
    pub fn of(partition: i32, key: Option<Vec<u8>>, payload: Vec<u8>, mut headers: Vec<Header>, from_partition: i32, from_offset: i64) -> Rerouted {
        headers.push((REROUTED_FROM.to_string(), Some(format!("{from_partition}/{from_offset}").into_bytes())));
        Rerouted { partition, key, payload, headers }
    }
}

pub trait RerouteSink: Send + Sync + 'static {
    /// Starts the produce; the future resolves once the broker acknowledged it.
    fn send(&self, record: Rerouted) -> DlqFuture;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_keeps_key_bytes_and_headers_and_names_its_source() {
        let r = Rerouted::of(7, Some(b"acme".to_vec()), b"{}".to_vec(), vec![("h".into(), None)], 3, 42);
        assert_eq!(r.partition, 7);
        assert_eq!(r.key.as_deref(), Some(&b"acme"[..]));
        assert_eq!(r.headers, vec![("h".into(), None), (REROUTED_FROM.into(), Some(b"3/42".to_vec()))]);
    }
}
