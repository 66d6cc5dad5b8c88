//! The key layout. Every key is `partition (u16 BE) | space (1 byte) | rest`.
//!
//! Tenant-scoped spaces continue with `tenant | 0x00` (tenant ids never contain a
//! NUL byte: events.md restricts them to `[a-z0-9_-]`). Integers are big-endian
//! and timestamps use `Ts::to_key_bytes`-style sortable encodings supplied by the
//! caller, so a prefix scan yields records in their natural order.

/// Keyspace tags. One byte each; the order of the enum is irrelevant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Space {
    /// Partition checkpoint: applied offset + watermark (no tenant).
    Checkpoint = b'O',
    /// `(tenant, event_id)` already applied: idempotence.
    Dedup = b'D',
    /// Identifier node → person.
    Node = b'N',
    /// Person record (members, counters).
    Person = b'P',
    /// Person timeline: touchpoints by (person, ts, event_id).
    Touch = b'T',
    /// Person conversions by (person, ts, event_id).
    Conversion = b'C',
    /// Person path summary (every touchpoint and conversion, compact) by person.
    Summary = b'Y',
    /// Tenant conversion index by (ts, event_id) → person, for range reports.
    ConversionByTime = b'X',
    /// Identity link edges, for guarded re-stitching.
    Link = b'L',
    /// Tenant metadata (person id counter, currency counts...).
    Tenant = b'M',
    /// Journey performance window counters.
    Window = b'W',
    /// Campaign lifecycle and spend.
    Campaign = b'G',
    /// Personalization variant performance.
    Variant = b'V',
    /// Dead-letter outbox: rejected records committed with the batch, deleted once
    /// the DLQ topic acknowledged them (no tenant; keyed by source offset).
    Outbox = b'Q',
    /// Partition-level registry of tenants seen.
    TenantIndex = b'I',
    /// consent_update records by (customer_id, ts, event_id).
    Consent = b'K',
    /// Segment membership by (customer_id, segment).
    Segment = b'S',
    /// Erasure tombstones by a hash of the identifier (never the identifier).
    Erased = b'E',
    /// Probabilistic-stitching signals (ip, user agent, geolocation) of a
    /// customer_id's accepted events by (customer_id, ts, event_id).
    Signal = b'Z',
    /// Imported daily cost totals by (campaign_id, date): the surviving
    /// `cost_import` of each (docs/collector.md).
    CostDay = b'B',
    /// Attribution results topic: per person, the digest of the record last
    /// published for each of its conversions (`actors::results`).
    Published = b'R',
    /// The probabilistic-link index of a tenant with `probabilistic = true`:
    /// its retained signals by (ip, customer_id, ts, event_id), their expiry
    /// by (ts, ip), the addresses currently shared, and the settings it was
    /// built with (`touchline_actors::state::problinks`).
    SignalIndex = b'J',
    /// Stored probabilistic links: anonymous person → (known person, score).
    ProbLink = b'A',
    /// Attribution results topic, per partition (no tenant): the fingerprint
    /// of the results configuration the published records were computed
    /// with, and the cursor of a pending backfill (`actors::results::backfill`).
    ResultsBackfill = b'U',
    /// The tenant's ID registry (docs/registry.md): ids, sequence counters,
    /// mint requests, taxonomy versions, built URLs and their counts, each
    /// under a one-byte tag after the tenant.
    Registry = b'H',
}

/// Start of a partition's key range.
pub fn partition_prefix(partition: u16) -> Vec<u8> {
    partition.to_be_bytes().to_vec()
}

/// `[start, end)` covering everything of one partition.
pub fn partition_range(partition: u16) -> (Vec<u8>, Vec<u8>) {
    let start = partition.to_be_bytes().to_vec();
    let end = if partition == u16::MAX {
        vec![0xff, 0xff, 0xff]
    } else {
        (partition + 1).to_be_bytes().to_vec()
    };
    (start, end)
}

/// Builds keys fluently: `KeyBuf::space(p, Space::Touch).tenant("acme").u64(7).bytes(&ts)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyBuf(pub Vec<u8>);

impl KeyBuf {
    pub fn space(partition: u16, space: Space) -> KeyBuf {
        let mut v = Vec::with_capacity(48);
        v.extend_from_slice(&partition.to_be_bytes());
        v.push(space as u8);
        KeyBuf(v)
    }
    /// Tenant segment, NUL-terminated.
    pub fn tenant(mut self, tenant: &str) -> KeyBuf {
        self.0.extend_from_slice(tenant.as_bytes());
        self.0.push(0);
        self
    }
    pub fn u8(mut self, v: u8) -> KeyBuf {
        self.0.push(v);
        self
    }
    pub fn u64(mut self, v: u64) -> KeyBuf {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> KeyBuf {
        self.0.extend_from_slice(b);
        self
    }
    /// A variable-length string segment, NUL-terminated (for ids that are not last).
    pub fn str0(mut self, s: &str) -> KeyBuf {
        // Identifiers may in principle contain NUL; escape it so prefixes stay unique.
        for &b in s.as_bytes() {
            if b <= 1 {
                self.0.push(1);
                self.0.push(b + 1);
            } else {
                self.0.push(b);
            }
        }
        self.0.push(0);
        self
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

/// The inverse of [`KeyBuf::str0`]: the segment at the start of `bytes` and
/// the length it took (its NUL included); `None` without a terminating NUL.
pub fn read_str0(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match *bytes.get(i)? {
            0 => return Some((out, i + 1)),
            1 => {
                out.push(bytes.get(i + 1)?.checked_sub(1)?);
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

impl AsRef<[u8]> for KeyBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Smallest key strictly greater than every key with this prefix (for range ends).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ranges_are_disjoint_and_ordered() {
        let (s0, e0) = partition_range(0);
        let (s1, _) = partition_range(1);
        assert_eq!(e0, s1);
        let k = KeyBuf::space(0, Space::Touch).tenant("acme").u64(3).into_vec();
        assert!(k >= s0 && k < e0);
    }

    #[test]
    fn str0_segments_do_not_collide() {
        let a = KeyBuf::space(0, Space::Node).str0("a").str0("b").into_vec();
        let b = KeyBuf::space(0, Space::Node).str0("a\0b").into_vec();
        assert_ne!(a, b);
        let p = KeyBuf::space(0, Space::Node).str0("ab").into_vec();
        assert!(!p.starts_with(&KeyBuf::space(0, Space::Node).str0("a").into_vec()));
    }

    #[test]
    fn read_str0_inverts_str0() {
        for s in ["", "abc", "a\0b", "\u{1}x\u{2}", "é"] {
            let k = KeyBuf::default().str0(s).bytes(b"rest").into_vec();
            let (seg, n) = read_str0(&k).unwrap();
            assert_eq!((seg.as_slice(), &k[n..]), (s.as_bytes(), b"rest".as_slice()), "{s:?}");
        }
        assert_eq!(read_str0(b"abc"), None);
    }

    #[test]
    fn prefix_end_bounds() {
        assert_eq!(prefix_end(&[1, 2]), vec![1, 3]);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
        let p = b"abc";
        let e = prefix_end(p);
        assert!(b"abc\xff\xff".as_slice() < e.as_slice());
    }
}
