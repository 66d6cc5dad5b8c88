//! Tenant → partition routing: Kafka's Java-client default partitioner
//! (`org.apache.kafka.common.utils.Utils.murmur2`, librdkafka
//! `partitioner=murmur2_random`), so the cluster agrees with every producer on
//! which partition (and so which node) owns a tenant (events.md, "Transport").

/// Kafka's murmur2 (32-bit MurmurHash2, seed `0x9747b28c`), bit-for-bit as the
/// Java client computes it, returned as the Java `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let len = data.len();
    // Java: `int h = seed ^ length` (length as a 32-bit int).
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Java's switch falls through: case 3, case 2, case 1 (which multiplies).
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of `tenant` among `partitions`:
/// `(murmur2(utf8(tenant)) & 0x7fffffff) % partitions`.
/// A non-positive partition count (a misconfiguration) maps everything to 0.
pub fn partition_for(tenant: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (murmur2(tenant.as_bytes()) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn kafka_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (data, want) in cases {
            assert_eq!(murmur2(data), want, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for p in [1, 2, 3, 12, 64, 1000] {
            for t in ["acme", "a", "tenant-0042", "x_y", ""] {
                let got = partition_for(t, p);
                assert!((0..p).contains(&got));
                assert_eq!(got, partition_for(t, p));
            }
        }
        assert_eq!(partition_for("anything", 1), 0);
        assert_eq!(partition_for("anything", 0), 0);
        // (murmur2("foobar") & 0x7fffffff) % 10, computed by hand from the vector.
        assert_eq!(partition_for("foobar", 10), (-790_332_482i32 & 0x7fff_ffff) % 10);
    }
}
