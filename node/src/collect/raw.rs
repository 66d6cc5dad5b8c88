//! Reading a collector body's JSON without building a tree: an object's
//! wanted fields come out as raw JSON text borrowed from the body
//! (`serde_json::value::RawValue`), and a field is decoded only when the
//! mapping reads it. A repeated key keeps its last value, as a parsed object
//! does; a name asked for twice gets the value in both places.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// One field's raw JSON text (`None`: the key is absent; a `null` is `Some`).
pub type Raw<'a> = Option<&'a RawValue>;

/// The fields `names` of the JSON object `json` (`Err`: not an object, or not JSON).
pub fn fields<'a, const N: usize>(json: &'a str, names: &[&str; N]) -> Result<[Raw<'a>; N], serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let out = Fields(names).deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

/// [`fields`] of a field's raw value (`None` unless it is an object).
pub fn object<'a, const N: usize>(raw: Raw<'a>, names: &[&str; N]) -> Option<[Raw<'a>; N]> {
    raw.filter(|r| r.get().starts_with('{')).and_then(|r| fields(r.get(), names).ok())
}

/// The elements of a JSON array (`None` unless it is one).
pub fn array<'a>(raw: Raw<'a>) -> Option<Vec<&'a RawValue>> {
    raw.filter(|r| r.get().starts_with('[')).and_then(|r| serde_json::from_str(r.get()).ok())
}

pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// The string a raw value holds (`None` unless it is a JSON string); borrowed
/// from the body unless it has escapes.
pub fn string<'a>(raw: Raw<'a>) -> Option<Cow<'a, str>> {
    let s = raw?.get();
    if !s.starts_with('"') {
        return None;
    }
    if !s.contains('\\') {
        return Some(Cow::Borrowed(&s[1..s.len() - 1]));
    }
    serde_json::from_str::<String>(s).ok().map(Cow::Owned)
}

/// The number a raw value holds, as `f64` (`None` unless it is a JSON number).
pub fn number(raw: Raw<'_>) -> Option<f64> {
    let s = raw?.get();
    s.starts_with(|c: char| c == '-' || c.is_ascii_digit()).then(|| serde_json::from_str::<f64>(s).ok()).flatten()
}

/// A JSON number's canonical text (as `serde_json::Number` prints it).
pub fn number_text(raw: Raw<'_>) -> Option<String> {
    let s = raw?.get();
    s.starts_with(|c: char| c == '-' || c.is_ascii_digit()).then(|| serde_json::from_str::<serde_json::Number>(s).ok().map(|n| n.to_string())).flatten()
}

struct Fields<'n, const N: usize>(&'n [&'n str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for Fields<'_, N> {
    type Value = [Raw<'de>; N];
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Fields<'_, N> {
    type Value = [Raw<'de>; N];
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = [None; N];
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            for (slot, name) in out.iter_mut().zip(self.0) {
                if *name == key {
                    *slot = Some(value);
                }
            }
        }
        Ok(out)
    }
}

/// An object key, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_raw_text_and_the_last_repeat_wins() {
        let [a, b, c, a2] = fields(r#"{"a": {"x": [1, 2]}, "b": null, "a\u0062": "s", "a": "last"}"#, &["a", "b", "ab", "a"]).unwrap();
        assert_eq!(a.map(RawValue::get), Some(r#""last""#));
        assert_eq!(a2.map(RawValue::get), Some(r#""last""#), "a name asked twice fills both");
        assert!(b.is_some_and(is_null));
        assert_eq!(string(c).as_deref(), Some("s"));
        assert!(fields("[1]", &["a"]).is_err());
        assert!(fields("{\"a\": 1} x", &["a"]).is_err());
    }

    #[test]
    fn scalars_decode_only_from_their_own_type() {
        let [s, e, n, t] = fields(r#"{"s": "plain", "e": "a\"b\u00e9", "n": -1.5e2, "t": true}"#, &["s", "e", "n", "t"]).unwrap();
        assert!(matches!(string(s), Some(Cow::Borrowed("plain"))));
        assert_eq!(string(e).as_deref(), Some("a\"bé"));
        assert_eq!((string(n), number(n), number_text(n).as_deref()), (None, Some(-150.0), Some("-150.0")));
        assert_eq!((string(t), number(t)), (None, None));
        assert_eq!(number(s), None);
        assert!(array(s).is_none());
        assert!(object(n, &["a"]).is_none());
    }
}
