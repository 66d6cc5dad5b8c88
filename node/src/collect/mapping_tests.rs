//! Unit tests of the Segment → events.md mapping.

use super::*;
use serde_json::{json, Value};

fn cx_map(call: &str, msg: Value) -> Result<Value, MapError> {
    let text = msg.to_string();
    let fields: Message = raw::fields(&text, &MESSAGE_FIELDS).expect("an object");
    let conv = |e: &str| match e {
        "Order Completed" => Some(ConversionSpec::default()),
        "Purchase" => Some(ConversionSpec { value: Some("total".into()), currency: Some("cur".into()) }),
        _ => None,
    };
    let cx = MapContext { tenant: "acme", received_at: Ts::new(1_700_000_000, 0), conversion: &conv, channel_rules: &[] };
    map_message(call, &fields, None, &cx).map(|m| serde_json::from_slice(&m.bytes).expect("JSON bytes"))
}

#[test]
fn page_maps_to_a_view_touchpoint_with_campaign_and_channel() {
    let e = cx_map(
        "page",
        json!({"messageId": "m1", "anonymousId": "anon-1", "timestamp": "2026-01-02T03:04:05Z",
               "context": {"page": {"url": "https://shop.example/p?utm_source=google", "referrer": "https://www.google.com/"},
                           "campaign": {"name": "spring sale", "source": "bing", "medium": "cpc"},
                           "ip": "10.0.0.1", "userAgent": "UA", "location": {"latitude": 1.5, "longitude": -2.0}}}),
    )
    .unwrap();
    assert_eq!(
        e,
        json!({"event_id": "m1", "tenant_id": "acme", "event_type": "touchpoint_interaction", "timestamp": "2026-01-02T03:04:05Z",
               "customer_id": "anon-1",
               "touchpoints": {"channel": "search", "interaction_type": "view",
                               "metadata": {"url": "https://shop.example/p?utm_source=google&utm_campaign=spring%20sale&utm_medium=cpc"}},
               "context": {"ip_address": "10.0.0.1", "user_agent": "UA", "geolocation": {"lat": 1.5, "lon": -2.0}}})
    );
}

#[test]
fn user_id_alone_is_both_ids() {
    let e = cx_map("track", json!({"messageId": "m2", "userId": "u1", "event": "Video Played"})).unwrap();
    assert_eq!(e["customer_id"], "u1");
    assert_eq!(e["user_id"], "u1");
    assert_eq!(e["touchpoints"], json!({"channel": "direct", "interaction_type": "Video Played"}));
    assert_eq!(e["timestamp"], Ts::new(1_700_000_000, 0).to_string());
}

#[test]
fn both_ids_keep_their_roles() {
    let e = cx_map("track", json!({"messageId": "m", "userId": "u1", "anonymousId": "a1", "event": "x"})).unwrap();
    assert_eq!((e["customer_id"].as_str(), e["user_id"].as_str()), (Some("a1"), Some("u1")));
}

#[test]
fn conversions_take_value_and_currency() {
    let e = cx_map("track", json!({"messageId": "m3", "anonymousId": "a", "event": "Order Completed", "properties": {"revenue": 42.5, "currency": "eur"}})).unwrap();
    assert_eq!(e["event_type"], "conversion_event");
    assert_eq!(e["conversion_data"], json!({"value": 42.5, "currency": "EUR", "conversion_type": "Order Completed"}));
    let e = cx_map("track", json!({"messageId": "m4", "anonymousId": "a", "event": "Order Completed", "properties": {"value": 7}})).unwrap();
    assert_eq!(e["conversion_data"], json!({"value": 7.0, "currency": "USD", "conversion_type": "Order Completed"}));
    let e = cx_map("track", json!({"messageId": "m5", "anonymousId": "a", "event": "Order Completed"})).unwrap();
    assert_eq!(e["conversion_data"]["value"], json!(0.0));
    let e = cx_map("track", json!({"messageId": "m6", "anonymousId": "a", "event": "Purchase", "properties": {"total": 3, "cur": "GBP", "revenue": 99}})).unwrap();
    assert_eq!(e["conversion_data"], json!({"value": 3.0, "currency": "GBP", "conversion_type": "Purchase"}));
}

#[test]
fn bad_conversion_values_name_the_property() {
    let e = cx_map("track", json!({"messageId": "m", "anonymousId": "a", "event": "Order Completed", "properties": {"revenue": -1}})).unwrap_err();
    assert_eq!(e.field, "properties.revenue");
    let e = cx_map("track", json!({"messageId": "m", "anonymousId": "a", "event": "Order Completed", "properties": {"currency": "EURO"}})).unwrap_err();
    assert_eq!(e.field, "properties.currency");
}

#[test]
fn identify_and_alias() {
    let e = cx_map("identify", json!({"messageId": "i1", "anonymousId": "a", "userId": "u"})).unwrap();
    assert_eq!((e["event_type"].as_str(), e["customer_id"].as_str(), e["user_id"].as_str()), (Some("identify"), Some("a"), Some("u")));
    let e = cx_map("identify", json!({"messageId": "i2", "userId": "u"})).unwrap();
    assert_eq!((e["customer_id"].as_str(), e["user_id"].as_str()), (Some("u"), Some("u")));
    let e = cx_map("alias", json!({"messageId": "i3", "previousId": "old", "userId": "new"})).unwrap();
    assert_eq!((e["event_type"].as_str(), e["customer_id"].as_str(), e["user_id"].as_str()), (Some("identify"), Some("old"), Some("new")));
    assert_eq!(cx_map("identify", json!({"messageId": "i", "anonymousId": "a"})).unwrap_err().field, "userId");
    assert_eq!(cx_map("alias", json!({"messageId": "i", "userId": "u"})).unwrap_err().field, "previousId");
}

#[test]
fn missing_fields_are_named() {
    assert_eq!(cx_map("track", json!({"anonymousId": "a", "event": "x"})).unwrap_err().field, "messageId");
    assert_eq!(cx_map("track", json!({"messageId": "m", "anonymousId": "a"})).unwrap_err().field, "event");
    assert_eq!(cx_map("page", json!({"messageId": "m"})).unwrap_err().field, "anonymousId");
    assert_eq!(cx_map("page", json!({"messageId": "m", "anonymousId": "a", "timestamp": "yesterday"})).unwrap_err().field, "timestamp");
    assert_eq!(cx_map("page", json!({"messageId": 5, "anonymousId": "a"})).unwrap_err().field, "messageId");
    assert_eq!(cx_map("group", json!({"messageId": "m", "anonymousId": "a"})).unwrap_err().field, "type");
}

#[test]
fn clock_skew_is_corrected_from_sent_at() {
    // Sent 10 s after the device's clock says it happened: the event is 10 s before receipt.
    let e = cx_map("track", json!({"messageId": "m", "anonymousId": "a", "event": "x", "sentAt": "2020-01-01T00:00:10Z", "originalTimestamp": "2020-01-01T00:00:00Z"})).unwrap();
    assert_eq!(e["timestamp"], Ts::new(1_700_000_000 - 10, 0).to_string());
}

#[test]
fn campaign_fills_only_what_the_url_lacks() {
    // name, source, medium, term, content
    let c = [None, Some("news".into()), Some("email".into()), None, Some("a b".into())];
    assert_eq!(with_campaign("https://x.io/?utm_medium=social#top", Some(&c)), "https://x.io/?utm_medium=social&utm_source=news&utm_content=a%20b#top");
    assert_eq!(with_campaign("", Some(&c)), "?utm_source=news&utm_medium=email&utm_content=a%20b");
    assert_eq!(query_param("https://x.io/?a=1&utm_source=a+b%21&utm_source=z", "utm_source").as_deref(), Some("a b!"));
}

#[test]
fn self_referrals_do_not_make_a_referral() {
    let e = cx_map("page", json!({"messageId": "m", "anonymousId": "a", "context": {"page": {"url": "https://x.io/b", "referrer": "https://x.io/a"}}})).unwrap();
    assert_eq!(e["touchpoints"]["channel"], "direct");
    let e = cx_map("screen", json!({"messageId": "m", "anonymousId": "a", "context": {"page": {"url": "https://x.io/b", "referrer": "https://blog.example/a"}}})).unwrap();
    assert_eq!(e["touchpoints"]["channel"], "referral");
}
