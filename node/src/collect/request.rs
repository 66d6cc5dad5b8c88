//! One collector request body (a single call or a `batch`) read from its raw
//! JSON: the write key it may carry, then every message mapped to its
//! event's bytes, all or nothing (`mapping` maps one message).

use super::mapping::{map_message, message_type, Context, MapContext, Mapped, Message, CONTEXT, CONTEXT_FIELDS, MESSAGE_FIELDS};
use super::raw::{self, Raw};
use super::MAX_EVENT_BYTES;
use std::borrow::Cow;

/// Why a request maps to nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// 400: the message names the field (`batch[i].field` in a batch).
    #[error("{0}")]
    Invalid(String),
    /// 413: one batch item is over [`MAX_EVENT_BYTES`].
    #[error("{0}")]
    TooLarge(String),
}

/// A request body's top level, borrowed from the body.
pub struct Request<'a> {
    /// `writeKey`, `batch`, then the fields of a single call's message.
    top: [Raw<'a>; 13],
}

/// The top-level keys read, in one pass over the body.
const TOP_FIELDS: [&str; 13] = {
    let mut names = ["writeKey", "batch", "", "", "", "", "", "", "", "", "", "", ""];
    let mut i = 0;
    while i < MESSAGE_FIELDS.len() {
        names[i + 2] = MESSAGE_FIELDS[i];
        i += 1;
    }
    names
};

impl<'a> Request<'a> {
    /// The body as a JSON object (an error names what is wrong with it).
    pub fn parse(body: &'a [u8]) -> Result<Request<'a>, RequestError> {
        let invalid_json = |e: &dyn std::fmt::Display| RequestError::Invalid(format!("body: not valid JSON: {e}"));
        let json = std::str::from_utf8(body).map_err(|e| invalid_json(&e))?;
        if !json.trim_start().starts_with('{') {
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(json) {
                Ok(_) => RequestError::Invalid("body: must be a JSON object".into()),
                Err(e) => invalid_json(&e),
            });
        }
        let top = raw::fields(json, &TOP_FIELDS).map_err(|e| invalid_json(&e))?;
        Ok(Request { top })
    }

    /// `writeKey` from the body, if it holds a string.
    pub fn write_key(&self) -> Option<Cow<'a, str>> {
        raw::string(self.top[0])
    }

    /// Every message of the request mapped: `call` is the route (`batch`, or
    /// the message type of a single call).
    pub fn map(&self, call: &str, cx: &MapContext<'_>) -> Result<Vec<Mapped>, RequestError> {
        let msg: Message<'a> = std::array::from_fn(|i| self.top[i + 2]);
        if call != "batch" {
            let ev = map_message(call, &msg, None, cx).map_err(|e| RequestError::Invalid(format!("field `{}`: {}", e.field, e.message)))?;
            return Ok(vec![ev]);
        }
        let items = raw::array(self.top[1]).ok_or_else(|| RequestError::Invalid("field `batch`: is required and must be an array".into()))?;
        let shared: Option<Context<'a>> = raw::object(msg[CONTEXT], &CONTEXT_FIELDS);
        let mut events = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            // The raw text is never shorter than the compact JSON the limit is on.
            if item.get().len() > MAX_EVENT_BYTES && compact_len(item.get()) > MAX_EVENT_BYTES {
                return Err(RequestError::TooLarge(format!("batch[{i}]: over {MAX_EVENT_BYTES} bytes")));
            }
            let type_required = || RequestError::Invalid(format!("batch[{i}].type: is required (track, identify, page, screen or alias)"));
            let msg: Message<'a> = raw::object(Some(item), &MESSAGE_FIELDS).ok_or_else(type_required)?;
            let kind = message_type(&msg).ok_or_else(type_required)?;
            let ev = map_message(&kind, &msg, shared.as_ref(), cx).map_err(|e| RequestError::Invalid(format!("batch[{i}].{}: {}", e.field, e.message)))?;
            events.push(ev);
        }
        Ok(events)
    }
}

/// The length of `json` written compactly (rare: only for items whose raw
/// text is over the limit).
fn compact_len(json: &str) -> usize {
    serde_json::from_str::<serde_json::Value>(json).and_then(|v| serde_json::to_vec(&v)).map_or(json.len(), |v| v.len())
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
