"""Produces a handful of touchline events (docs/events.md) for the tenant my-shop:
two touchpoints on a phone, a login, a touchpoint and a 120 EUR conversion on a
laptop. Usage: python3 produce.py BROKER (e.g. the address `touchline demo` prints).
Needs confluent-kafka (pip install confluent-kafka)."""
import json, sys, uuid
from datetime import datetime, timedelta, timezone
from confluent_kafka import Producer

brokers = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
producer = Producer({
    "bootstrap.servers": brokers,
    "partitioner": "murmur2_random",   # Kafka's Java default: the tenant's partition
    "enable.idempotence": True,
})

def send(event):
    event.setdefault("event_id", str(uuid.uuid4()))
    producer.produce("marketing-events", key=event["tenant_id"], value=json.dumps(event).encode())

now = datetime.now(timezone.utc)
at = lambda hours_ago: (now - timedelta(hours=hours_ago)).isoformat(timespec="milliseconds")
tenant = "my-shop"

# Two touchpoints on a phone cookie, a login linking it to a user, a conversion on the laptop.
send({"tenant_id": tenant, "event_type": "touchpoint_interaction", "timestamp": at(48),
      "customer_id": "phone-cookie-1",
      "touchpoints": {"channel": "social", "interaction_type": "click",
                      "metadata": {"url": "https://shop.example/?utm_source=instagram&utm_medium=paid&utm_campaign=spring"}}})
send({"tenant_id": tenant, "event_type": "touchpoint_interaction", "timestamp": at(24),
      "customer_id": "phone-cookie-1",
      "touchpoints": {"channel": "email", "interaction_type": "open"}})
send({"tenant_id": tenant, "event_type": "identify", "timestamp": at(23),
      "customer_id": "phone-cookie-1", "user_id": "alice"})
send({"tenant_id": tenant, "event_type": "touchpoint_interaction", "timestamp": at(2),
      "customer_id": "laptop-cookie-7", "user_id": "alice",
      "touchpoints": {"channel": "search", "interaction_type": "click",
                      "metadata": {"url": "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=spring"}}})
send({"tenant_id": tenant, "event_type": "conversion_event", "timestamp": at(1),
      "customer_id": "laptop-cookie-7", "user_id": "alice",
      "conversion_data": {"value": 120.0, "currency": "EUR", "conversion_type": "purchase"}})

left = producer.flush(10)
print("sent; not delivered:", left)
