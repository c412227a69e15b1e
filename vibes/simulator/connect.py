"""The Connect operations: SMS and their delivery receipts, and Connect's
callback registration (one URL per type and short code).

A delivery receipt goes to the SMS's own `callback_url`, else to the URL
registered for the short code's receipts. Like a carrier, a share of SMS
never reach the handset (the fault switch `receipt_failure_rate`): their
receipt says "failed", with the carrier's reason.
"""

from urllib.parse import urlsplit

from ..callback_types import CONNECT_TYPES
from .protocol import E164, connect_error, now_iso


class ConnectOperations:
    """Part of VibesSimulator: `_op_<operation>` answers one request, with its lock held."""

    def _op_send_sms(self, *, body, **_):
        to, sender, text = body.get("to"), body.get("from"), body.get("text")
        if not isinstance(to, str) or not E164.match(to):
            raise connect_error(400, "`to` must be a mobile number in E.164 form.", "invalid_parameter")
        if not isinstance(sender, str) or not sender:
            raise connect_error(400, "`from` (the short code) is required.", "invalid_parameter")
        if not isinstance(text, str) or not text or len(text) > 1600:
            raise connect_error(400, "`text` is required, at most 1600 characters.", "invalid_parameter")
        message_id = f"SIM-MSG-{next(self.state.message_seq):09d}"
        callback_url = body.get("callback_url") or ""
        registered = self.state.connect_callbacks.get(("delivery_receipt", sender)) or {}
        receipt_url = callback_url or registered.get("url") or ""
        delivery = "failed" if self._random.random() < self.faults["receipt_failure_rate"] else "delivered"
        self.state.messages.append(
            {
                "message_id": message_id,
                "to": to,
                "from": sender,
                "text": text,
                "callback_url": callback_url,
                "received_at": now_iso(),
                "delivery": delivery,
            }
        )
        if receipt_url and self._scheduler and self._poster:
            receipt = {
                "event_type": "delivery_receipt",
                "message_id": message_id,
                "to": to,
                "from": sender,
                "status": delivery,
                "occurred_at": now_iso(),
            }
            if delivery == "failed":
                receipt.update(
                    error_code="carrier_unreachable", description=self.config["receipt_failure_reason"]
                )
            self._scheduler.call_later(
                self.config["receipt_delay"],
                "delivery",
                self._send_receipt,
                receipt_url,
                receipt,
                self._generation,
            )
        return 200, {"message_id": message_id, "status": "accepted", "to": to, "from": sender}

    def _send_receipt(self, url, payload, generation):
        if generation == self._generation and self._poster:
            self._poster.put(url, "delivery_receipt", payload, header_event_type=False)

    def _op_register_connect_callback(self, *, body, **_):
        callback_type, url = body.get("callback_type"), body.get("url")
        if callback_type not in CONNECT_TYPES:
            raise connect_error(
                400, "`callback_type` must be inbound_sms or delivery_receipt.", "invalid_parameter"
            )
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise connect_error(400, "`url` must be an http or https URL.", "invalid_parameter")
        short_code = str(body.get("short_code") or "")
        # One callback per type and short code: registering again replaces its URL.
        known = self.state.connect_callbacks.get((callback_type, short_code))
        registration = {
            "id": known["id"] if known else f"SIM-CC-{next(self.state.registration_seq):05d}",
            "callback_type": callback_type,
            "url": url,
            "short_code": short_code,
            "created_at": known["created_at"] if known else now_iso(),
        }
        self.state.connect_callbacks[(callback_type, short_code)] = registration
        return 201, registration
