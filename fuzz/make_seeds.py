#!/usr/bin/env python3
"""Writes the named seed inputs of fuzz/corpus/<target>/ (valid and edge-case
inputs taken from the unit tests), JSON and MessagePack. Run from fuzz/."""
import json
import struct

TOUCH = {"event_id": "e1", "tenant_id": "acme", "event_type": "touchpoint_interaction", "timestamp": "2025-12-31T10:00:00Z",
         "customer_id": "c1", "touchpoints": {"channel": "email", "interaction_type": "click",
                                              "metadata": {"url": "https://x.io/?utm_source=nl&utm_medium=email&cm_node_seq=02"}}}


def touch(**patch):
    v = dict(TOUCH)
    v.update(patch)
    return v


EVENTS = {
    "touchpoint": TOUCH,
    "journey_start": touch(event_type="journey_start", journey_id="CMP-EYLEA-2024-001",
                           touchpoints={"channel": "search", "interaction_type": "visit",
                                        "metadata": {"url": "https://x.io/l?utm_source=google&cm_node_seq=-0#top"}},
                           entry_point={"source": "bing", "medium": "cpc", "campaign": "spring", "content": "", "term": None},
                           initial_context={"device_type": "mobile", "location": {"lon": 2.35, "lat": 48.85, "city": None}}),
    "context": touch(context={"device_type": "d", "location": "Paris", "referral_source": "r", "ip_address": "1.2.3.4",
                              "user_agent": "ua", "geolocation": 75001, "other": [1]}),
    "conversion": touch(event_type="conversion_event",
                        conversion_data={"value": 120.5, "currency": "EUR", "conversion_type": "purchase"}),
    "identify": {k: v for k, v in touch(event_type="identify", user_id="u1", consent={"analytics": False}).items()
                 if k != "touchpoints"},
    "consent_update": {"event_id": "p1", "tenant_id": "acme", "timestamp": 1767000000000, "event_type": "consent_update",
                       "customer_id": "c1", "consent": {"analytics": False}},
    "erasure": {"event_id": "p1", "tenant_id": "acme", "timestamp": 1767000000000, "event_type": "erasure_request",
                "customer_id": "c1"},
    "campaign": {"event_id": "k1", "tenant_id": "acme", "timestamp": "2025-12-01T00:00:00Z", "event_type": "campaign_optimization",
                 "campaign_id": "CMP-1", "channel": "search", "performance_metrics": {"impressions": 1000, "clicks": 50.0, "cost": 12.5},
                 "optimization_trigger": {"any": "thing"}, "changes_made": [1, "x"], "launch_config": 3},
    "personalization": {"event_id": "z1", "tenant_id": "acme", "timestamp": "2025-12-01T00:00:00Z",
                        "event_type": "content_optimization", "customer_id": "c1",
                        "segments": ["hcp", "oncology", "hcp", None], "segment": "new", "segment_id": 42,
                        "content_variations": [
                            {"variant_id": "A", "performance_metrics": {"impressions": 10, "clicks": 2, "revenue": 5.5, "ctr": "x"}},
                            {"variant_id": "B", "content": {"any": 1}}],
                        "personalization_rules": "whatever"},
    "rich": touch(event_type="journey_start", user_id="u-9", journey_id="J", current_stage="aware",
                  touchpoints={"channel": "social", "interaction_type": "impression",
                               "metadata": {"url": "https://x.io/?utm_content=a%20b&cm_variant=V2&cm_campaign_id=C&utm_medium=paid"}},
                  entry_point={"source": "fb", "medium": "social", "term": "t"},
                  context={"ip_address": "10.0.0.1", "user_agent": "UA", "geolocation": {"lat": 1, "lon": -2.5}},
                  consent={"analytics": True}, timestamp=1767175200123),
}
DUP_KEYS = (b'{"event_id":"e","tenant_id":"BAD","tenant_id":"acme","event_type":"erasure_request",'
            b'"customer_id":"c","timestamp":"2025-12-01T00:00:00Z"}')

URLS = [
    "https://x.io/p?utm_source=a&utm_medium=b#utm_content=c", "https://x.io/p?utm_source=a?b=c&cm_x=1",
    "https://x.io/p#frag?utm_source=a", "https://x.io/?utm_so\turce=a\n&cm_x=\r1", "/?utm_term=a+b%20c", "/?utm_term=%zz%4%",
    "/?utm_term=%FFok", "/?utm_term=%C3%A9t%C3%A9", "/?%75tm_source=a&cm%5Fx=b",
    "/?a=1&utm_source=x&gclid=2&cm_brand=y&UTM_MEDIUM=z&utm_source=w", "/?utm_source=&utm_source=b&utm_source=c",
    "/?cm_node_seq=x1&cm_node_seq=2", "/?cm_node_seq=&cm_node_seq=%2B07", "/?cm_node_seq=-007",
    "https://brand.example/l?utm_source=google&utm_medium=cpc&utm_campaign=spring&utm_content=hero"
    "&cm_campaign_id=CMP-1&cm_journey_id=J-9&cm_node_seq=03&cm_variant=B",
    # URL, then NUL-separated entry_point source, medium, campaign, content, term and journey_id.
    "/?utm_source=google&utm_medium=&utm_content=hero\0newsletter\0email\0ep-camp\0\0t\0JRN",
]

QUERIES = [
    "model=linear&from=2026-01-01T00%3A00%3A00%2B01%3A00", "from=2026-01-01T00:00:00+01:00", "modle=x", "model=a&model=b",
    "lookback_days=0", "from=yesterday",
    "model=custom&weights=0.4,0.2,0.4&half_life_hours=168&group_by=campaign&currency=EUR&lookback_days=30",
    "from=2025-12-01T09:00:00.123456789Z&to=2025-12-31T23:59:59-05:00", "from=2025-12-01 09:00:00 02:00",
    "2025-12-01T09:00:00Z", "1970-01-01T00:00:00.1234567899999Z",
]


def msgpack(o):
    """The few MessagePack forms the seeds need."""
    if o is None:
        return b"\xc0"
    if o is True or o is False:
        return b"\xc3" if o else b"\xc2"
    if isinstance(o, int):
        return bytes([o]) if 0 <= o < 128 else b"\xd3" + struct.pack(">q", o)
    if isinstance(o, float):
        return b"\xcb" + struct.pack(">d", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        return (b"\xd9" + bytes([len(b)]) if len(b) < 256 else b"\xda" + struct.pack(">H", len(b))) + b
    if isinstance(o, list):
        return bytes([0x90 | len(o)]) + b"".join(msgpack(x) for x in o)
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(msgpack(k) + msgpack(v) for k, v in o.items())
    raise TypeError(o)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


for name, event in EVENTS.items():
    write(f"corpus/decode_event/seed_{name}.json", json.dumps(event, separators=(",", ":")).encode())
for name in ["touchpoint", "rich", "campaign", "personalization", "erasure"]:
    write(f"corpus/decode_event/seed_{name}.msgpack", msgpack(EVENTS[name]))
write("corpus/decode_event/seed_dup_keys.json", DUP_KEYS)
for i, url in enumerate(URLS):
    write(f"corpus/url_utm/seed_{i:02}", url.encode())
for i, query in enumerate(QUERIES):
    write(f"corpus/query_string/seed_{i:02}", query.encode())
