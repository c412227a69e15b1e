"""What phones text to the short code, as the callbacks that bring it to the
app: Connect's inbound SMS and the Platform's unmatched message."""

NUMBER = "+15551230001"


def inbound_sms(text="What time do you open?", *, mdn=NUMBER, message_id="MO-1", **extra):
    return {
        "callback_type": "inbound_sms",
        "message_id": message_id,
        "from": mdn,
        "to": "12345",
        "text": text,
        "occurred_at": "2026-11-20T09:30:00.250Z",
        **extra,
    }


def unmatched(text="What time do you open?", *, mdn=NUMBER, message_id="MO-1", **extra):
    return {
        "event_id": "EV-1",
        "callback_type": "unmatched_message_received",
        "event_date": "2026-11-20T09:30:00Z",
        "participant": {"mdn": mdn, "carrier_id": "104"},
        "source_code": {"company_key": "acme", "code": "12345", "country_code": "1", "code_type": "SC"},
        "message": text,
        "message_id": message_id,
        "txn_id": "TX-1",
        "receipt_date": "2026-11-20T09:30:01+00:00",
        **extra,
    }
