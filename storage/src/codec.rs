//! Value codec: MessagePack (`rmp-serde`, named fields) for every stored record.
//!
//! Named fields keep records forward compatible: a newer binary can add optional
//! fields (`#[serde(default)]`) without rewriting old state.

use crate::{Result, StorageError};
use serde::{de::DeserializeOwned, Serialize};

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| StorageError::Encode(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn roundtrip() {
        let v = (1u32, "x".to_string(), Some(2.5f64));
        let b = super::encode(&v).unwrap();
        let back: (u32, String, Option<f64>) = super::decode(b"k", &b).unwrap();
        assert_eq!(v, back);
        assert!(super::decode::<(u32, String)>(b"k", b"\xc1").is_err());
    }
}
