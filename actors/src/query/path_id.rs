//! A path of interned key ids as a key of the path counts
//! ([`super::paths_entry`]): packed into one `u128`, a byte per key, when it
//! is short and its ids small (the common case: a few channels or campaigns),
//! so counting a path hashes and compares it inline and allocates nothing;
//! boxed otherwise. Which form a path takes depends only on its ids, so each
//! path has exactly one key.

/// Longest path that packs (one byte per key).
const PACKED_LEN: usize = 16;
/// Ids at or above this are boxed (`id + 1` fills a byte; 0 ends the path).
const PACKED_ID: u32 = 255;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum PathId {
    /// Byte `i` is `ids[i] + 1`; the first zero byte ends the path.
    Packed(u128),
    Boxed(Box<[u32]>),
}

impl PathId {
    /// The key of the path `ids` yields, packed as it goes (allocating only
    /// when it does not pack).
    pub fn collect(ids: impl IntoIterator<Item = u32>) -> PathId {
        let (mut v, mut n, mut it) = (0u128, 0, ids.into_iter());
        while let Some(id) = it.next() {
            if n == PACKED_LEN || id >= PACKED_ID {
                let mut all = Vec::new();
                PathId::Packed(v).push_ids(&mut all);
                all.push(id);
                all.extend(it);
                return PathId::Boxed(all.into());
            }
            v |= (id as u128 + 1) << (8 * n);
            n += 1;
        }
        PathId::Packed(v)
    }

    /// Number of keys in the path.
    pub fn len(&self) -> usize {
        match self {
            PathId::Packed(v) => 16 - (v.leading_zeros() / 8) as usize,
            PathId::Boxed(ids) => ids.len(),
        }
    }

    /// Appends the path's ids to `out`.
    pub fn push_ids(&self, out: &mut Vec<u32>) {
        match self {
            PathId::Packed(v) => {
                let mut v = *v;
                while v != 0 {
                    out.push((v & 0xff) as u32 - 1);
                    v >>= 8;
                }
            }
            PathId::Boxed(ids) => out.extend_from_slice(ids),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn of(ids: &[u32]) -> PathId {
        PathId::collect(ids.iter().copied())
    }

    fn ids(p: &PathId) -> Vec<u32> {
        let mut out = Vec::new();
        p.push_ids(&mut out);
        out
    }

    #[test]
    fn short_paths_of_small_ids_pack() {
        assert!(matches!(of(&[0, 3, 254]), PathId::Packed(_)));
        assert!(matches!(of(&[0; 16]), PathId::Packed(_)));
        assert!(matches!(of(&[255]), PathId::Boxed(_)), "id too large");
        assert!(matches!(of(&[1; 17]), PathId::Boxed(_)), "path too long");
        assert_eq!(of(&[254; 16]).len(), 16);
        assert_eq!(of(&[]).len(), 0);
    }

    proptest! {
        /// Every path round-trips, and two paths share a key only if equal.
        #[test]
        fn one_key_per_path(a in prop::collection::vec(prop_oneof![0u32..4, 250u32..260], 0..20), b in prop::collection::vec(prop_oneof![0u32..4, 250u32..260], 0..20)) {
            let (ka, kb) = (of(&a), of(&b));
            prop_assert_eq!(ids(&ka), a.clone());
            prop_assert_eq!(ka.len(), a.len());
            prop_assert_eq!(ka == kb, a == b);
        }
    }
}
