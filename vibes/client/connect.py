"""The Connect API operations: SMS from the short code, and Connect's callback registration."""

from ..types import CallbackRegistration, SentMessage
from .transport import Transport


class ConnectOperations(Transport):
    """The Connect message API (`connect_url`)."""

    # --- Connect: callback registration ------------------------------------------

    def register_connect_callback(self, callback_type: str, *, url: str) -> CallbackRegistration:
        """Register `url` for Connect's inbound SMS or delivery receipts of our short code.

        Connect publishes no way to list, change or cancel a registration, so
        the caller keeps its own record of what it registered.
        """
        body = {"callback_type": callback_type, "url": url, "short_code": self.short_code}
        data = self._json(self._request("POST", f"{self.connect_url}/api/v1/callbacks", json=body))
        data = data if isinstance(data, dict) else {}
        return CallbackRegistration(
            api="connect",
            id=str(data.get("id") or ""),
            callback_type=str(data.get("callback_type") or callback_type),
            url=str(data.get("url") or url),
            short_code=str(data.get("short_code") or self.short_code),
        )

    # --- Connect: SMS ---------------------------------------------------------

    def send_sms(self, *, to: str, text: str, callback_url: str | None = None) -> SentMessage:
        """Send one SMS from the short code. A 5xx or timeout raises VibesUncertain."""
        body = {"to": to, "from": self.short_code, "text": text}
        if callback_url:
            body["callback_url"] = callback_url
        data = self._json(self._request("POST", f"{self.connect_url}/api/v1/sms/messages", json=body))
        data = data if isinstance(data, dict) else {}
        return SentMessage(message_id=str(data.get("message_id") or ""), status=str(data.get("status") or ""))
