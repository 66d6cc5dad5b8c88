//! Tests of `decode`: one per rejection reason, the check order, JSON ≡
//! MessagePack, timestamp edges, every event type, and no-panic property tests.

use super::*;
use crate::domain::timestamp::parse_rfc3339;
use proptest::prelude::*;
use serde_json::{json, Value};

const NOW: &str = "2026-01-01T00:00:00Z";

fn now() -> Ts {
    parse_rfc3339(NOW).unwrap()
}

fn ctx() -> ValidateCtx {
    ValidateCtx { now: now(), partition: None, partitions: 12 }
}

fn touch() -> Value {
    json!({
        "event_id": "e1",
        "tenant_id": "acme",
        "event_type": "touchpoint_interaction",
        "timestamp": "2025-12-31T10:00:00Z",
        "customer_id": "c1",
        "touchpoints": {"channel": "email", "interaction_type": "click",
                        "metadata": {"url": "https://x.io/?utm_source=nl&utm_medium=email&cm_node_seq=02"}}
    })
}

fn with(mut v: Value, patch: Value) -> Value {
    for (k, x) in patch.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

/// Decodes `v` as JSON and as MessagePack with `c`, asserts both agree.
fn dec_with(v: &Value, c: &ValidateCtx) -> Result<Event, Rejection> {
    let j = decode(&serde_json::to_vec(v).unwrap(), c);
    let m = decode(&rmp_serde::to_vec_named(v).unwrap(), c);
    match (&j, &m) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "JSON and MessagePack events differ"),
        (Err(a), Err(b)) => assert_eq!(a, b, "JSON and MessagePack rejections differ"),
        _ => panic!("JSON {j:?} but MessagePack {m:?}"),
    }
    j
}

fn dec(v: &Value) -> Result<Event, Rejection> {
    dec_with(v, &ctx())
}

fn reason(v: &Value) -> Reason {
    dec(v).expect_err("expected a rejection").reason
}

fn raw_reason(bytes: &[u8]) -> Reason {
    decode(bytes, &ctx()).expect_err("expected a rejection").reason
}

fn journey_of(e: Event) -> JourneyEvent {
    match e.body {
        Body::Journey(j) => j,
        other => panic!("not a journey event: {other:?}"),
    }
}

#[test]
fn accepts_a_touchpoint() {
    let e = dec(&touch()).unwrap();
    assert_eq!(e.event_id, "e1");
    assert_eq!(e.tenant_id, "acme");
    assert_eq!(e.ts, parse_rfc3339("2025-12-31T10:00:00Z").unwrap());
    let j = journey_of(e);
    assert_eq!(j.kind, JourneyKind::TouchpointInteraction);
    assert_eq!(j.customer_id, "c1");
    assert!(j.analytics_consent);
    assert_eq!(j.conversion, None);
    let t = j.touch.unwrap();
    assert_eq!(t.channel, Channel::Email);
    assert_eq!(t.interaction_type, "click");
    assert_eq!(t.dims.source_medium.as_deref(), Some("nl / email"));
    assert_eq!(t.dims.sequence.as_deref(), Some("2"));
}

// --- one test per reason -------------------------------------------------

#[test]
fn reason_too_large() {
    let small = with(touch(), json!({"pad": ""}));
    let base_len = serde_json::to_vec(&small).unwrap().len();
    let exact = with(touch(), json!({"pad": "x".repeat(MAX_EVENT_BYTES - base_len)}));
    assert_eq!(serde_json::to_vec(&exact).unwrap().len(), MAX_EVENT_BYTES);
    assert!(decode(&serde_json::to_vec(&exact).unwrap(), &ctx()).is_ok());
    let over = with(touch(), json!({"pad": "x".repeat(MAX_EVENT_BYTES - base_len + 1)}));
    assert_eq!(raw_reason(&serde_json::to_vec(&over).unwrap()), Reason::TooLarge);
    assert_eq!(raw_reason(&vec![0xff; MAX_EVENT_BYTES + 1]), Reason::TooLarge);
}

#[test]
fn reason_decode() {
    for bad in [
        &b""[..],
        b"{",
        b"{\"a\":1",
        b"{\"a\":1} x",      // trailing garbage after JSON
        b"{\"a\":NaN}",      // JSON has no NaN
        b"{\"a\":Infinity}", // nor Infinity
        b"{\"a\":1e999}",    // out of f64 range
        b"{'a':1}",
        b"{\"a\":\"\xff\"}", // invalid UTF-8 in JSON
        b"{\"a\":\"\\ud800\"}", // lone surrogate
        b"\xdc\x00\x05\x01",   // array16 of 5 with 1 element: truncated
        b"\xa5ab",            // fixstr 5, truncated
    ] {
        assert_eq!(raw_reason(bad), Reason::Decode, "{bad:?}");
    }
    // MessagePack: bytes after the value.
    let mut mp = rmp_serde::to_vec_named(&touch()).unwrap();
    assert!(decode(&mp, &ctx()).is_ok());
    mp.push(0xc0);
    assert_eq!(raw_reason(&mp), Reason::Decode);
    // Leading whitespace means MessagePack (no JSON fallback): a fixint then junk.
    let mut spaced = b" ".to_vec();
    spaced.extend(serde_json::to_vec(&touch()).unwrap());
    assert_eq!(raw_reason(&spaced), Reason::Decode);
    // MessagePack: invalid UTF-8 string and NaN / infinite floats, even in unknown fields.
    assert_eq!(raw_reason(b"\x81\xa1a\xa1\xff"), Reason::Decode);
    assert_eq!(raw_reason(b"\x81\xa2\xff\xfe\x01"), Reason::Decode); // invalid key
    let nan = [&b"\x81\xa1a\xcb"[..], &f64::NAN.to_be_bytes()].concat();
    assert_eq!(raw_reason(&nan), Reason::Decode);
    let inf = [&b"\x81\xa1a\xca"[..], &f32::NEG_INFINITY.to_be_bytes()].concat();
    assert_eq!(raw_reason(&inf), Reason::Decode);
}

#[test]
fn reason_schema_not_a_map() {
    assert_eq!(raw_reason(b"\x05"), Reason::Schema);
    assert_eq!(raw_reason(b"\xc0"), Reason::Schema);
    assert_eq!(raw_reason(&rmp_serde::to_vec_named(&json!([touch()])).unwrap()), Reason::Schema);
    assert_eq!(raw_reason(&rmp_serde::to_vec_named(&json!("x")).unwrap()), Reason::Schema);
}

#[test]
fn reason_tenant() {
    for t in ["Acme", "-acme", "_acme", "", "ac me", "acmé", "a".repeat(65).as_str()] {
        assert_eq!(reason(&with(touch(), json!({ "tenant_id": t }))), Reason::Tenant, "{t:?}");
    }
    for t in ["a", "0", "a-b_c", "a".repeat(64).as_str()] {
        assert!(dec(&with(touch(), json!({ "tenant_id": t }))).is_ok(), "{t:?}");
    }
    // Missing, null or not a string is schema.
    assert_eq!(reason(&without(touch(), "tenant_id")), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"tenant_id": null}))), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"tenant_id": 7}))), Reason::Schema);
}

#[test]
fn reason_schema_common_fields() {
    assert_eq!(reason(&without(touch(), "event_id")), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"event_id": ""}))), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"event_id": 12}))), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"event_id": "x".repeat(129)}))), Reason::Schema);
    assert!(dec(&with(touch(), json!({"event_id": "é".repeat(64)}))).is_ok()); // 128 bytes
    assert_eq!(reason(&with(touch(), json!({"event_id": "é".repeat(65)}))), Reason::Schema);
    assert_eq!(reason(&without(touch(), "event_type")), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"event_type": ["touchpoint_interaction"]}))), Reason::Schema);
}

#[test]
fn reason_unknown_type() {
    assert_eq!(reason(&with(touch(), json!({"event_type": "page_view"}))), Reason::UnknownType);
    assert_eq!(reason(&with(touch(), json!({"event_type": ""}))), Reason::UnknownType);
    assert_eq!(reason(&with(touch(), json!({"event_type": "Journey_Start"}))), Reason::UnknownType);
}

#[test]
fn reason_timestamp() {
    assert_eq!(reason(&with(touch(), json!({"timestamp": "yesterday"}))), Reason::Timestamp);
    assert_eq!(reason(&with(touch(), json!({"timestamp": "2025-12-31T23:59:60Z"}))), Reason::Timestamp);
    assert_eq!(reason(&with(touch(), json!({"timestamp": "2025-12-31T10:00:00"}))), Reason::Timestamp);
    assert_eq!(reason(&with(touch(), json!({"timestamp": 253_402_300_800_000i64}))), Reason::Timestamp);
    assert_eq!(reason(&with(touch(), json!({"timestamp": -62_135_596_800_001i64}))), Reason::Timestamp);
    assert_eq!(reason(&with(touch(), json!({"timestamp": u64::MAX}))), Reason::Timestamp);
    assert_eq!(reason(&with(touch(), json!({"timestamp": i64::MIN}))), Reason::Timestamp);
    // Missing or ill-typed is schema; a float is ill-typed even when integral.
    assert_eq!(reason(&without(touch(), "timestamp")), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"timestamp": null}))), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"timestamp": 1.767e12}))), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"timestamp": true}))), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"timestamp": {"ms": 1}}))), Reason::Schema);
    assert_eq!(raw_reason(br#"{"event_id":"e","tenant_id":"t","event_type":"identify","timestamp":1.0}"#), Reason::Schema);
    assert_eq!(raw_reason(br#"{"event_id":"e","tenant_id":"t","event_type":"identify","timestamp":1767000000000.0}"#), Reason::Schema);
    assert_eq!(raw_reason(br#"{"event_id":"e","tenant_id":"t","event_type":"identify","timestamp":1e12}"#), Reason::Schema);
}

#[test]
fn timestamp_forms_and_future_bound() {
    let at = |ts: Value| dec(&with(touch(), json!({ "timestamp": ts }))).map(|e| e.ts);
    let want = parse_rfc3339("2025-12-31T10:00:00Z").unwrap();
    assert_eq!(at(json!("2025-12-31t10:00:00z")), Ok(want));
    assert_eq!(at(json!("2025-12-31 11:30:00+01:30")), Ok(want));
    assert_eq!(at(json!("2025-12-31T05:00:00-05:00")), Ok(want));
    assert_eq!(at(json!(want.as_millis())), Ok(want));
    assert_eq!(at(json!("2025-12-31T10:00:00.1234567891Z")), Ok(Ts::new(want.secs, 123_456_789)));
    // Year 0001 is fine (only the future is bounded).
    assert_eq!(at(json!(-62_135_596_800_000i64)), Ok(parse_rfc3339("0001-01-01T00:00:00Z").unwrap()));

    // now + 7 days exactly is accepted; one millisecond later is not.
    let limit = now().plus_secs(7 * 86_400);
    assert_eq!(at(json!(limit.as_millis())), Ok(limit));
    assert_eq!(at(json!("2026-01-08T00:00:00Z")), Ok(limit));
    assert_eq!(at(json!(limit.as_millis() + 1)).unwrap_err().reason, Reason::Timestamp);
    assert_eq!(at(json!("2026-01-08T00:00:00.000000001Z")).unwrap_err().reason, Reason::Timestamp);

    // The year-9999 epoch-ms boundary, with a clock near it.
    let late = ValidateCtx { now: parse_rfc3339("9999-12-31T00:00:00Z").unwrap(), ..ctx() };
    let ok = dec_with(&with(touch(), json!({"timestamp": 253_402_300_799_999i64})), &late).unwrap();
    assert_eq!(ok.ts.to_string(), "9999-12-31T23:59:59.999Z");
    let r = dec_with(&with(touch(), json!({"timestamp": 253_402_300_800_000i64})), &late).unwrap_err();
    assert_eq!(r.reason, Reason::Timestamp);
}

#[test]
fn msgpack_integer_widths_for_timestamp() {
    let ms: i64 = 1_767_175_200_000; // 2025-12-31T10:00:00Z
    let mut base = touch();
    base.as_object_mut().unwrap().remove("timestamp");
    let body = rmp_serde::to_vec_named(&base).unwrap();
    // Re-open the map with one more entry and append "timestamp" with an explicit marker.
    assert_eq!(body[0] & 0xf0, 0x80);
    let grow = |marker: &[u8]| {
        let mut b = vec![body[0] + 1];
        b.extend_from_slice(&body[1..]);
        b.extend_from_slice(b"\xa9timestamp");
        b.extend_from_slice(marker);
        decode(&b, &ctx())
    };
    let want = Ts::from_millis(ms);
    assert_eq!(grow(&[&[0xcf][..], &(ms as u64).to_be_bytes()].concat()).unwrap().ts, want);
    assert_eq!(grow(&[&[0xd3][..], &ms.to_be_bytes()].concat()).unwrap().ts, want);
    assert_eq!(grow(&[0x05]).unwrap().ts, Ts::from_millis(5));
    assert_eq!(grow(&[0xd0, 0xff]).unwrap().ts, Ts::from_millis(-1));
    assert_eq!(grow(&[&[0xcb][..], &(ms as f64).to_be_bytes()].concat()).unwrap_err().reason, Reason::Schema);
    assert_eq!(grow(&[&[0xc4, 0x01][..], b"x"].concat()).unwrap_err().reason, Reason::Schema); // binary
}

#[test]
fn reason_misrouted() {
    let right = routing::partition_for("acme", 12);
    let c = |p| ValidateCtx { partition: Some(p), ..ctx() };
    assert!(dec_with(&touch(), &c(right)).is_ok());
    assert_eq!(dec_with(&touch(), &c((right + 1) % 12)).unwrap_err().reason, Reason::Misrouted);
}

#[test]
fn check_order() {
    let c = |p| ValidateCtx { partition: Some(p), ..ctx() };
    let wrong = (routing::partition_for("acme", 12) + 1) % 12;
    let cases: Vec<(Value, Reason)> = vec![
        // not a map beats everything below it (MessagePack only; see reason_schema_not_a_map)
        (with(without(touch(), "event_id"), json!({"tenant_id": "BAD", "event_type": "nope"})), Reason::Tenant),
        (with(without(touch(), "tenant_id"), json!({"event_type": "nope", "timestamp": "x"})), Reason::Schema),
        (with(touch(), json!({"tenant_id": 1, "event_type": "nope"})), Reason::Schema),
        (with(touch(), json!({"event_id": 5, "event_type": "nope"})), Reason::Schema),
        (with(touch(), json!({"event_type": "nope", "timestamp": "x"})), Reason::UnknownType),
        (with(without(touch(), "timestamp"), json!({"event_type": "nope"})), Reason::UnknownType),
        (with(without(touch(), "customer_id"), json!({"timestamp": 1.5})), Reason::Schema),
        (with(without(touch(), "customer_id"), json!({"timestamp": "x"})), Reason::Timestamp),
        (with(touch(), json!({"timestamp": "2027-01-01T00:00:00Z"})), Reason::Timestamp),
        (without(touch(), "customer_id"), Reason::Misrouted),
        (with(touch(), json!({"touchpoints": {"channel": "fax"}})), Reason::Misrouted),
    ];
    for (v, want) in cases {
        assert_eq!(dec_with(&v, &c(wrong)).map(|_| ()).unwrap_err().reason, want, "{v}");
    }
    // Size comes first, then decode, then the map check.
    let mut big = serde_json::to_vec(&with(touch(), json!({"tenant_id": "BAD"}))).unwrap();
    big.resize(MAX_EVENT_BYTES + 1, b' ');
    assert_eq!(raw_reason(&big), Reason::TooLarge);
    assert_eq!(raw_reason(br#"{"tenant_id":"BAD","#), Reason::Decode);
    let mut trailing = rmp_serde::to_vec_named(&json!([1])).unwrap();
    trailing.push(1);
    assert_eq!(raw_reason(&trailing), Reason::Decode);
}

#[test]
fn null_is_absent_and_unknown_fields_are_ignored() {
    let v = with(touch(), json!({"user_id": null, "journey_id": null, "consent": null, "extra": {"deep": [1, 2.5, null]}}));
    let j = journey_of(dec(&v).unwrap());
    assert_eq!((j.user_id, j.journey_id), (None, None));
    assert!(j.analytics_consent);
    // An optional field of the wrong type is ill-typed.
    for patch in [
        json!({"user_id": 5}),
        json!({"user_id": ""}),
        json!({"user_id": "u".repeat(257)}),
        json!({"journey_id": 5}),
        json!({"current_stage": false}),
        json!({"consent": true}),
        json!({"consent": {"analytics": "yes"}}),
    ] {
        assert_eq!(reason(&with(touch(), patch.clone())), Reason::Schema, "{patch}");
    }
}

#[test]
fn touchpoint_fields() {
    let tp = |t: Value| reason(&with(touch(), json!({ "touchpoints": t })));
    assert_eq!(reason(&without(touch(), "touchpoints")), Reason::Schema);
    assert_eq!(tp(json!("email")), Reason::Schema);
    assert_eq!(tp(json!({"interaction_type": "click"})), Reason::Schema);
    assert_eq!(tp(json!({"channel": "fax", "interaction_type": "click"})), Reason::Schema);
    assert_eq!(tp(json!({"channel": "Email", "interaction_type": "click"})), Reason::Schema);
    assert_eq!(tp(json!({"channel": "email"})), Reason::Schema);
    assert_eq!(tp(json!({"channel": "email", "interaction_type": 1})), Reason::Schema);
    assert_eq!(tp(json!({"channel": "email", "interaction_type": "click", "metadata": []})), Reason::Schema);
    assert_eq!(tp(json!({"channel": "email", "interaction_type": "click", "metadata": {"url": 3}})), Reason::Schema);
    let r = dec(&with(touch(), json!({"touchpoints": {"channel": "fax", "interaction_type": "x"}}))).unwrap_err();
    assert!(r.detail.starts_with("touchpoints.channel:"), "{}", r.detail);
    // touchpoints.timestamp is ignored whatever its type; metadata's other fields too.
    for ts in [json!(1.5), json!("garbage"), json!({"a": 1})] {
        let t = json!({"channel": "field_sales", "interaction_type": "visit", "timestamp": ts, "metadata": {"x": [1]}});
        let j = journey_of(dec(&with(touch(), json!({ "touchpoints": t }))).unwrap());
        assert_eq!(j.touch.unwrap().channel, Channel::FieldSales);
    }
    // touchpoints on other journey events is ignored, whatever it holds.
    let stage = with(touch(), json!({"event_type": "journey_stage_change", "touchpoints": 5, "current_stage": "consider"}));
    let j = journey_of(dec(&stage).unwrap());
    assert_eq!((j.touch, j.current_stage.as_deref()), (None, Some("consider")));
}

#[test]
fn journey_start_with_entry_point() {
    let v = with(
        touch(),
        json!({
            "event_type": "journey_start",
            "journey_id": "CMP-EYLEA-2024-001",
            "touchpoints": {"channel": "search", "interaction_type": "visit",
                            "metadata": {"url": "https://x.io/l?utm_source=google&cm_node_seq=-0#top"}},
            "entry_point": {"source": "bing", "medium": "cpc", "campaign": "spring", "content": "", "term": null},
            "initial_context": {"device_type": "mobile", "location": {"lon": 2.35, "lat": 48.85, "city": null}},
        }),
    );
    let j = journey_of(dec(&v).unwrap());
    assert_eq!(j.kind, JourneyKind::JourneyStart);
    assert_eq!(j.journey_id.as_deref(), Some("CMP-EYLEA-2024-001"));
    let d = j.touch.unwrap().dims;
    assert_eq!(d.source_medium.as_deref(), Some("google / cpc"));
    assert_eq!(d.campaign.as_deref(), Some("spring"));
    assert_eq!(d.journey.as_deref(), Some("CMP-EYLEA-2024-001"));
    assert_eq!(d.sequence.as_deref(), Some("0"));
    assert_eq!(d.content, None);
    let ctx = j.context.unwrap();
    assert_eq!(ctx.device_type.as_deref(), Some("mobile"));
    assert_eq!(ctx.location.as_deref(), Some(r#"{"lat":48.85,"lon":2.35}"#));

    // entry_point is required-shaped on journey_start only.
    assert_eq!(reason(&with(v.clone(), json!({"entry_point": {"source": "bing"}}))), Reason::Schema);
    assert_eq!(reason(&with(v.clone(), json!({"entry_point": {"source": "a", "medium": "b", "term": 1}}))), Reason::Schema);
    assert_eq!(reason(&with(v.clone(), json!({"entry_point": "bing"}))), Reason::Schema);
    let t = with(touch(), json!({"entry_point": {"source": "bing", "medium": "cpc"}, "journey_id": ""}));
    let j = journey_of(dec(&t).unwrap());
    assert_eq!(j.journey_id, None);
    assert_eq!(j.touch.unwrap().dims.source_medium.as_deref(), Some("nl / email"));
}

#[test]
fn context_fields() {
    let ctx_of = |patch: Value| journey_of(dec(&with(touch(), patch)).unwrap()).context;
    assert_eq!(ctx_of(json!({})), None);
    let full = json!({"device_type": "d", "location": "Paris", "referral_source": "r", "ip_address": "1.2.3.4",
                      "user_agent": "ua", "geolocation": {"lat": 48.85, "lon": 2.35, "alt": 1}, "other": [1]});
    let c = ctx_of(json!({ "context": full, "initial_context": {"device_type": "ignored"} })).unwrap();
    assert_eq!(
        c,
        Context {
            device_type: Some("d".into()),
            location: Some("Paris".into()),
            referral_source: Some("r".into()),
            ip_address: Some("1.2.3.4".into()),
            user_agent: Some("ua".into()),
            geolocation: Some(Geo { lat: 48.85, lon: 2.35 }),
        }
    );
    let c = ctx_of(json!({"initial_context": {"geolocation": {"lat": -90, "lon": 180}, "location": {"b": "\"q\"", "a": [1, {"z": 1}]}}}))
        .unwrap();
    assert_eq!(c.geolocation, Some(Geo { lat: -90.0, lon: 180.0 }));
    assert_eq!(c.location.as_deref(), Some(r#"{"a":[1,{"z":1}],"b":"\"q\""}"#));
}

/// events.md: an ill-typed context or signal counts as absent, never a
/// rejection; the signal object is `context` when that is an object, else
/// `initial_context`, with no per-field fallback.
#[test]
fn ill_typed_context_is_absent_never_a_rejection() {
    let ctx_of = |patch: Value| journey_of(dec(&with(touch(), patch)).unwrap()).context;
    let signals = |c: Option<Context>| c.map(|c| (c.ip_address, c.user_agent, c.geolocation));
    for patch in [
        json!({"context": {"ip_address": 5, "user_agent": ["x"], "geolocation": "x"}}),
        json!({"context": {"ip_address": "", "user_agent": "", "geolocation": [1, 2]}}),
        json!({"context": {"geolocation": {"lat": 91, "lon": 0}}}),
        json!({"context": {"geolocation": {"lat": 0, "lon": -180.5}}}),
        json!({"context": {"geolocation": {"lat": "1", "lon": 2}}}),
        json!({"context": {"geolocation": {"lat": 1}}}),
        json!({"context": {"device_type": 3, "location": true, "referral_source": {}}}),
    ] {
        assert_eq!(signals(ctx_of(patch.clone())), Some((None, None, None)), "{patch}");
    }
    // A context that is not an object falls back to initial_context, whole.
    for ctx in [json!("mobile"), json!(5), json!([1]), json!(null)] {
        let c = ctx_of(json!({"context": ctx, "initial_context": {"ip_address": "9.9.9.9"}})).unwrap();
        assert_eq!(c.ip_address.as_deref(), Some("9.9.9.9"));
    }
    // No per-field fallback: an object context without an ip keeps none.
    let c = ctx_of(json!({"context": {"user_agent": "ua"}, "initial_context": {"ip_address": "9.9.9.9"}})).unwrap();
    assert_eq!((c.ip_address, c.user_agent.as_deref()), (None, Some("ua")));
    assert_eq!(ctx_of(json!({"context": "x", "initial_context": 7})), None);
    // Conversions with ill-typed context are accepted (they were dead-lettered).
    let conv = with(
        touch(),
        json!({"event_type": "conversion_event", "conversion_data": {"value": 1, "currency": "USD"},
               "context": {"ip_address": 5, "geolocation": "x"}, "initial_context": "y"}),
    );
    assert!(journey_of(dec(&conv).unwrap()).conversion.is_some());
}

#[test]
fn conversion_event() {
    let conv = |cd: Value| dec(&with(touch(), json!({"event_type": "conversion_event", "conversion_data": cd})));
    let j = journey_of(conv(json!({"value": 120.5, "currency": "EUR", "conversion_type": "purchase"})).unwrap());
    assert_eq!(j.touch, None); // touchpoints on a conversion are ignored
    assert_eq!(j.conversion, Some(ConversionInfo { value: 120.5, currency: "EUR".into(), conversion_type: Some("purchase".into()) }));
    assert_eq!(journey_of(conv(json!({"value": 0, "currency": "USD"})).unwrap()).conversion.unwrap().value, 0.0);
    assert_eq!(journey_of(conv(json!({"value": 7, "currency": "USD"})).unwrap()).conversion.unwrap().value, 7.0);
    for (cd, field) in [
        (json!({"value": -1, "currency": "USD"}), "value"),
        (json!({"value": -0.01, "currency": "USD"}), "value"),
        (json!({"value": "10", "currency": "USD"}), "value"),
        (json!({"currency": "USD"}), "value"),
        (json!({"value": 1}), "currency"),
        (json!({"value": 1, "currency": "usd"}), "currency"),
        (json!({"value": 1, "currency": "USDX"}), "currency"),
        (json!({"value": 1, "currency": "US"}), "currency"),
        (json!({"value": 1, "currency": "USD", "conversion_type": 2}), "conversion_type"),
    ] {
        let r = conv(cd.clone()).unwrap_err();
        assert_eq!(r.reason, Reason::Schema, "{cd}");
        assert!(r.detail.starts_with(&format!("conversion_data.{field}:")), "{cd}: {}", r.detail);
    }
    assert_eq!(conv(json!({"value": 1, "currency": "usd"})).unwrap_err().detail, "conversion_data.currency: expected [A-Z]{3}");
    assert_eq!(reason(&with(touch(), json!({"event_type": "conversion_event"}))), Reason::Schema);
    assert_eq!(reason(&with(touch(), json!({"event_type": "conversion_event", "conversion_data": [1]}))), Reason::Schema);
}

#[test]
fn identify_and_consent() {
    let id = without(with(touch(), json!({"event_type": "identify", "user_id": "u1", "consent": {"analytics": false}})), "touchpoints");
    let j = journey_of(dec(&id).unwrap());
    assert_eq!((j.kind, j.user_id.as_deref(), j.analytics_consent), (JourneyKind::Identify, Some("u1"), false));
    assert_eq!(reason(&without(id.clone(), "user_id")), Reason::Schema);
    assert_eq!(reason(&without(id, "customer_id")), Reason::Schema);
    assert!(journey_of(dec(&with(touch(), json!({"consent": {}}))).unwrap()).analytics_consent);
}

#[test]
fn privacy_events() {
    let base = json!({"event_id": "p1", "tenant_id": "acme", "timestamp": 1_767_000_000_000i64});
    let cu = with(base.clone(), json!({"event_type": "consent_update", "customer_id": "c1", "consent": {"analytics": false}}));
    assert_eq!(dec(&cu).unwrap().body, Body::ConsentUpdate { customer_id: "c1".into(), analytics: false });
    assert_eq!(reason(&with(cu.clone(), json!({"consent": {}}))), Reason::Schema);
    assert_eq!(reason(&without(cu.clone(), "consent")), Reason::Schema);
    assert_eq!(reason(&without(cu, "customer_id")), Reason::Schema);
    let er = with(base, json!({"event_type": "erasure_request", "customer_id": "c1"}));
    assert_eq!(dec(&er).unwrap().body, Body::Erasure { customer_id: "c1".into() });
    assert_eq!(reason(&with(er.clone(), json!({"customer_id": ""}))), Reason::Schema);
    assert_eq!(reason(&without(er, "customer_id")), Reason::Schema);
}

#[test]
fn campaign_events() {
    let base = json!({"event_id": "k1", "tenant_id": "acme", "timestamp": "2025-12-01T00:00:00Z",
                      "event_type": "campaign_optimization", "campaign_id": "CMP-1", "channel": "search",
                      "performance_metrics": {"impressions": 1000, "clicks": 50.0, "cost": 12.5},
                      "optimization_trigger": {"any": "thing"}, "changes_made": [1, "x"], "launch_config": 3});
    let e = dec(&base).unwrap();
    let want = CampaignEvent {
        kind: CampaignKind::Optimization,
        campaign_id: "CMP-1".into(),
        campaign_name: None,
        channel: Some("search".into()),
        metrics: CampaignMetrics { impressions: 1000.0, clicks: 50.0, conversions: 0.0, cost: 12.5, revenue: 0.0 },
    };
    assert_eq!(e.body, Body::Campaign(want));
    let launch = without(with(base.clone(), json!({"event_type": "campaign_launch"})), "performance_metrics");
    match dec(&launch).unwrap().body {
        Body::Campaign(c) => assert_eq!((c.kind, c.metrics), (CampaignKind::Launch, CampaignMetrics::default())),
        b => panic!("{b:?}"),
    }
    for patch in [
        json!({"campaign_id": ""}),
        json!({"campaign_id": 5}),
        json!({"campaign_id": null}),
        json!({"campaign_name": 5}),
        json!({"performance_metrics": 5}),
        json!({"performance_metrics": {"cost": "12"}}),
    ] {
        assert_eq!(reason(&with(base.clone(), patch.clone())), Reason::Schema, "{patch}");
    }
}

#[test]
fn personalization_events() {
    let base = json!({"event_id": "z1", "tenant_id": "acme", "timestamp": "2025-12-01T00:00:00Z",
                      "event_type": "content_optimization", "customer_id": "c1",
                      "segments": ["hcp", "oncology", "hcp", null], "segment": "new", "segment_id": 42,
                      "content_variations": [
                          {"variant_id": "A", "performance_metrics": {"impressions": 10, "clicks": 2, "revenue": 5.5, "ctr": "x"}},
                          {"variant_id": "B", "content": {"any": 1}},
                      ],
                      "personalization_rules": "whatever"});
    let want = PersonalizationEvent {
        kind: PersonalizationKind::ContentOptimization,
        customer_id: Some("c1".into()),
        segments: vec!["hcp".into(), "oncology".into(), "new".into(), "42".into()],
        variants: vec![
            VariantMetrics { variant_id: "A".into(), impressions: 10.0, clicks: 2.0, conversions: 0.0, revenue: 5.5 },
            VariantMetrics { variant_id: "B".into(), ..VariantMetrics::default() },
        ],
    };
    assert_eq!(dec(&base).unwrap().body, Body::Personalization(want));
    let minimal = json!({"event_id": "z2", "tenant_id": "acme", "timestamp": "2025-12-01T00:00:00Z", "event_type": "segment_update"});
    let e = dec(&minimal).unwrap();
    assert_eq!(
        e.body,
        Body::Personalization(PersonalizationEvent {
            kind: PersonalizationKind::SegmentUpdate,
            customer_id: None,
            segments: vec![],
            variants: vec![]
        })
    );
    for patch in [
        json!({"customer_id": ""}),
        json!({"segments": "hcp"}),
        json!({"segments": [1]}),
        json!({"segment": 1}),
        json!({"segment_id": 1.5}),
        json!({"content_variations": {"variant_id": "A"}}),
        json!({"content_variations": [1]}),
        json!({"content_variations": [{"variant": "A"}]}),
        json!({"content_variations": [{"variant_id": "A", "performance_metrics": {"clicks": "2"}}]}),
    ] {
        assert_eq!(reason(&with(base.clone(), patch.clone())), Reason::Schema, "{patch}");
    }
}

#[test]
fn duplicate_keys_last_wins_in_both_encodings() {
    let json = br#"{"event_id":"e","tenant_id":"BAD","tenant_id":"acme","event_type":"erasure_request","customer_id":"c","timestamp":"2025-12-01T00:00:00Z"}"#;
    let e = decode(json, &ctx()).unwrap();
    assert_eq!(e.tenant_id, "acme");
    // Same map as MessagePack, written by hand to keep the repeat.
    let mut mp = vec![0x86];
    for (k, v) in [("event_id", "e"), ("tenant_id", "BAD"), ("tenant_id", "acme"), ("event_type", "erasure_request"), ("customer_id", "c"), ("timestamp", "2025-12-01T00:00:00Z")] {
        for s in [k, v] {
            mp.push(0xa0 | s.len() as u8);
            mp.extend_from_slice(s.as_bytes());
        }
    }
    assert_eq!(decode(&mp, &ctx()), Ok(e));
    // Non-string MessagePack keys are ignored.
    let mut mp2 = mp.clone();
    mp2[0] = 0x87;
    mp2.extend_from_slice(&[0x01, 0xa1, b'x']);
    assert!(decode(&mp2, &ctx()).is_ok());
}

#[test]
fn json_and_msgpack_agree_on_a_rich_event() {
    let v = with(
        touch(),
        json!({
            "event_type": "journey_start", "user_id": "u-9", "journey_id": "J", "current_stage": "aware",
            "touchpoints": {"channel": "social", "interaction_type": "impression",
                            "metadata": {"url": "https://x.io/?utm_content=a%20b&cm_variant=V2&cm_campaign_id=C&utm_medium=paid"}},
            "entry_point": {"source": "fb", "medium": "social", "term": "t"},
            "context": {"ip_address": "10.0.0.1", "user_agent": "UA", "geolocation": {"lat": 1, "lon": -2.5}},
            "consent": {"analytics": true}, "timestamp": 1_767_175_200_123i64,
        }),
    );
    let e = dec(&v).unwrap(); // dec asserts JSON == MessagePack
    let j = journey_of(e);
    let d = j.touch.unwrap().dims;
    assert_eq!(d.content.as_deref(), Some("a b"));
    assert_eq!(d.source_medium.as_deref(), Some("fb / paid"));
    assert_eq!(d.campaign.as_deref(), Some("C"));
    assert_eq!(j.context.unwrap().geolocation, Some(Geo { lat: 1.0, lon: -2.5 }));
}

#[test]
fn many_segments_take_linear_time() {
    // Regression (found writing the fuzz targets, FUZZING.md): segments were
    // de-duplicated with a `Vec::contains` per segment, so a 64 KiB record of
    // ~18k distinct segments took ~0.3 s to decode.
    let items: Vec<String> = (0..300_000).map(|i| (i % 200_000).to_string()).chain([String::new()]).collect();
    let t = std::time::Instant::now();
    let unique = unique_nonempty(items);
    assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(unique.len(), 200_000);
    assert_eq!(unique[..3], ["0", "1", "2"]);
    assert_eq!(unique[199_999], "199999");

    // End to end: near the size limit, repeats across the three fields dropped.
    let segs: Vec<String> = (0..7_000).map(|i| format!("s{i}")).collect();
    let mut given = segs.clone();
    given.extend(["s0".to_string(), String::new(), "s6999".to_string()]);
    let v = json!({"event_id": "z", "tenant_id": "acme", "timestamp": "2025-12-01T00:00:00Z", "event_type": "segment_update",
                   "segments": given, "segment": "s1", "segment_id": 7000});
    assert!(serde_json::to_vec(&v).unwrap().len() <= MAX_EVENT_BYTES);
    let Body::Personalization(p) = dec(&v).unwrap().body else { panic!("not personalization") };
    let mut want = segs;
    want.push("7000".to_string());
    assert_eq!(p.segments, want);
}

fn valid_json_bytes() -> Vec<u8> {
    serde_json::to_vec(&with(
        touch(),
        json!({"event_type": "journey_start", "entry_point": {"source": "s", "medium": "m"},
               "context": {"location": {"a": [1, 2.5]}}, "conversion_data": {"value": 1, "currency": "EUR"}}),
    ))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes, &ctx());
        let mut as_json = vec![b'{'];
        as_json.extend_from_slice(&bytes);
        let _ = decode(&as_json, &ctx());
    }

    #[test]
    fn mutated_events_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
        msgpack in any::<bool>(),
    ) {
        let mut bytes = if msgpack {
            rmp_serde::to_vec_named(&serde_json::from_slice::<Value>(&valid_json_bytes()).unwrap()).unwrap()
        } else {
            valid_json_bytes()
        };
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1)).min(bytes.len().saturating_sub(1));
            match op {
                0 if !bytes.is_empty() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 if !bytes.is_empty() => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        let c = ValidateCtx { partition: Some(3), ..ctx() };
        let _ = decode(&bytes, &c);
    }
}

#[test]
fn cost_import_events() {
    use crate::domain::costs::CostImport;
    let base = json!({"event_id": "cost-1", "tenant_id": "acme", "timestamp": "2025-12-01T10:00:00.123456789Z",
                      "event_type": "cost_import", "campaign_id": "spring", "date": "2026-02-28", "cost": 12.5,
                      "currency": "EUR", "source": "google", "medium": "cpc", "impressions": 1000, "clicks": 40});
    let e = dec(&base).unwrap();
    let want = CostImport { campaign_id: "spring".into(), date: "2026-02-28".into(), cost: 12.5, currency: "EUR".into(), source: Some("google".into()), medium: Some("cpc".into()), impressions: Some(1000.0), clicks: Some(40.0) };
    assert_eq!((e.body, e.ts), (Body::CostImport(want), Ts::new(1_764_583_200, 123_456_789)));
    let bare = json!({"event_id": "cost-2", "tenant_id": "acme", "timestamp": 0, "event_type": "cost_import", "campaign_id": "c", "date": "2026-01-01", "cost": 0, "currency": "USD"});
    assert!(matches!(dec(&bare).unwrap().body, Body::CostImport(CostImport { impressions: None, clicks: None, source: None, .. })));
    for patch in [
        json!({"campaign_id": ""}),
        json!({"campaign_id": null}),
        json!({"date": "2026-02-30"}),
        json!({"date": 20260228}),
        json!({"cost": -1}),
        json!({"cost": "12"}),
        json!({"cost": null}),
        json!({"currency": "eur"}),
        json!({"currency": null}),
        json!({"impressions": -3}),
        json!({"clicks": "x"}),
        json!({"source": ""}),
        json!({"medium": 4}),
    ] {
        assert_eq!(reason(&with(base.clone(), patch.clone())), Reason::Schema, "{patch}");
    }
}

#[test]
fn registry_command_events() {
    use crate::domain::governance::registry::{RegistryCommand, Status};
    let base = json!({"event_id": "reg-1", "tenant_id": "acme", "timestamp": "2025-12-01T10:00:00Z", "event_type": "registry_command",
                      "command": {"update": {"id": "CNT-2024-0001", "status": "live", "set": {"title": "Banner"}, "remove": ["audience"]}}});
    let e = dec(&base).unwrap();
    let Body::Registry(cmd) = e.body else { panic!("{:?}", e.body) };
    let set = json!({"title": "Banner"}).as_object().cloned().unwrap();
    assert_eq!(*cmd, RegistryCommand::Update { id: "CNT-2024-0001".into(), status: Some(Status::Live), set, remove: vec!["audience".into()] });
    for patch in [json!({"command": null}), json!({"command": "x"}), json!({"command": {"mint": {}}}), json!({"command": {"drop": {}}})] {
        assert_eq!(reason(&with(base.clone(), patch.clone())), Reason::Schema, "{patch}");
    }
}
