//! The one value tree both encodings of an event decode into (events.md,
//! "Decoding"): JSON through `serde_json` (strings borrowed from the input where
//! they can), MessagePack through `rmpv`. Non-finite floats and invalid UTF-8
//! are decode errors here; a non-string MessagePack map key names no field and
//! is dropped. Also the canonical JSON text of a value, for fields stored as text.

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The one internal value tree both encodings decode into. Strings borrow from
/// the input where they can.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum V<'a> {
    Null,
    Bool(bool),
    Int(i128),
    /// Always finite.
    Float(f64),
    Str(Cow<'a, str>),
    /// MessagePack binary or ext data.
    Opaque,
    Array(Vec<V<'a>>),
    Map(Vec<(Cow<'a, str>, V<'a>)>),
}

// ---------------------------------------------------------------------------
// Bytes → V

pub(super) fn parse(bytes: &[u8]) -> Result<V<'_>, String> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice::<V<'_>>(bytes).map_err(|e| format!("json: {e}"));
    }
    let mut rd = bytes;
    let value = rmpv::decode::read_value_ref(&mut rd).map_err(|e| format!("msgpack: {e}"))?;
    if !rd.is_empty() {
        return Err(format!("msgpack: {} bytes after the value", rd.len()));
    }
    from_msgpack(value).map_err(|e| format!("msgpack: {e}"))
}

fn from_msgpack(v: rmpv::ValueRef<'_>) -> Result<V<'_>, &'static str> {
    use rmpv::ValueRef as R;
    Ok(match v {
        R::Nil => V::Null,
        R::Boolean(b) => V::Bool(b),
        R::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => V::Int(n.into()),
            (None, Some(n)) => V::Int(n.into()),
            (None, None) => return Err("unrepresentable integer"),
        },
        R::F32(f) => finite(f64::from(f))?,
        R::F64(f) => finite(f)?,
        R::String(s) => V::Str(Cow::Borrowed(s.into_str().ok_or("invalid UTF-8 string")?)),
        R::Binary(_) | R::Ext(..) => V::Opaque,
        R::Array(items) => V::Array(items.into_iter().map(from_msgpack).collect::<Result<_, _>>()?),
        R::Map(pairs) => {
            let mut entries = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let v = from_msgpack(v)?;
                // A non-string key names no field: ignored.
                if let V::Str(k) = from_msgpack(k)? {
                    entries.push((k, v));
                }
            }
            V::Map(entries)
        }
    })
}

fn finite<'a>(f: f64) -> Result<V<'a>, &'static str> {
    if f.is_finite() {
        Ok(V::Float(f))
    } else {
        Err("NaN or infinite float")
    }
}

impl<'de> Deserialize<'de> for V<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = V<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<V<'de>, E> {
        Ok(V::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<V<'de>, E> {
        Ok(V::Int(n.into()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<V<'de>, E> {
        Ok(V::Int(n.into()))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<V<'de>, E> {
        finite(f).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<V<'de>, E> {
        Ok(V::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<V<'de>, E> {
        Ok(V::Str(Cow::Borrowed(s)))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<V<'de>, E> {
        Ok(V::Str(Cow::Owned(s)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<V<'de>, E> {
        Ok(V::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(V::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            entries.push((key, map.next_value()?));
        }
        Ok(V::Map(entries))
    }
}

/// A map key, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
}

/// Canonical JSON text of a value (object keys sorted, a repeated key's last
/// value, null members left out; opaque data written as `null`).
pub(super) fn json_text(v: &V<'_>) -> String {
    fn write(v: &V<'_>, out: &mut String) {
        match v {
            V::Null | V::Opaque => out.push_str("null"),
            V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            V::Int(n) => out.push_str(&n.to_string()),
            V::Float(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
            V::Str(s) => out.push_str(&serde_json::Value::from(s.as_ref()).to_string()),
            V::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            V::Map(entries) => {
                let mut sorted: Vec<&(Cow<'_, str>, V<'_>)> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeats keep input order
                out.push('{');
                let mut first = true;
                for (i, (k, v)) in sorted.iter().map(|e| (&e.0, &e.1)).enumerate() {
                    let repeated_later = sorted.get(i + 1).is_some_and(|n| n.0 == *k);
                    if repeated_later || matches!(v, V::Null) {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write(&V::Str(Cow::Borrowed(k.as_ref())), out);
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}
