"""The control and inspection endpoints under `/_simulator/`, for tests and operators.

No auth: the simulator listens on loopback only. Each endpoint calls the
Python method of the same meaning: `GET messages`, `GET requests`,
`GET stats`, `GET subscriptions`, `GET callbacks`, `GET inbound`,
`GET registrations` (passwords hidden), `POST reset`, `POST faults`,
`POST config`, `POST reply`, `POST keyword` (a phone texts a keyword and
joins its list), `POST subscribers` (one, or many at once),
`POST campaigns` (adds or changes an acquisition campaign: status, end
date), `POST drain` (waits until the callbacks due so far were delivered).
"""

from .protocol import json_body, platform_error


class ControlEndpoints:
    """Part of VibesSimulator."""

    def _control(self, method, name, raw_body):
        body = json_body(raw_body, connect=False) if method == "POST" else None
        if method == "GET":
            views = {
                "messages": self.messages,
                "requests": self.requests_log,
                "stats": self.stats,
                "subscriptions": self.subscriptions,
                "callbacks": self.callbacks_log,
                "registrations": lambda: self.registrations(with_passwords=False),
                "inbound": self.inbound,
            }
            if name in views:
                return 200, views[name]()
        elif method == "POST":
            if name == "reset":
                self.reset()
                return 200, {"reset": True}
            if name == "drain":
                # Blocks until the callbacks due so far were delivered (or the timeout).
                return 200, {"drained": self.wait_for_callbacks(float(body.get("timeout") or 10))}
            if name == "faults":
                try:
                    self.set_faults(**body)
                except (TypeError, ValueError) as error:
                    raise platform_error(400, str(error), 400) from None
                return 200, dict(self.faults)
            if name == "config":
                unknown = set(body) - set(self.config)
                if unknown:
                    raise platform_error(400, f"unknown settings: {', '.join(sorted(unknown))}", 400)
                self.configure(**body)
                return 200, dict(self.config)
            if name == "reply":
                try:
                    return 200, self.reply(str(body.get("mdn") or ""), str(body.get("text") or ""))
                except ValueError as error:
                    raise platform_error(400, str(error), 400) from None
            if name == "campaigns":
                try:
                    self.set_campaign(
                        str(body.get("acquisition_id") or ""),
                        **{k: body[k] for k in ("list_id", "description", "status", "end_date") if k in body},
                    )
                except ValueError as error:
                    raise platform_error(400, str(error), 400) from None
                return 200, {"set": True}
            if name == "subscribers":
                if isinstance(body.get("subscribers"), list):
                    rows = [row for row in body["subscribers"] if isinstance(row, dict)]
                    return 200, {"added": self.add_subscribers(body.get("list_id"), rows)}
                self.add_subscriber(
                    body.get("list_id"),
                    str(body.get("mdn") or ""),
                    external_person_id=str(body.get("external_person_id") or ""),
                    custom_fields=body.get("custom_fields")
                    if isinstance(body.get("custom_fields"), dict)
                    else None,
                )
                return 200, {"added": True}
            if name == "keyword":
                try:
                    return 200, self.keyword(str(body.get("mdn") or ""), str(body.get("keyword") or ""))
                except ValueError as error:
                    raise platform_error(400, str(error), 400) from None
                except LookupError as error:
                    raise platform_error(404, str(error), 404) from None
        raise platform_error(404, "Unknown simulator endpoint.", 404)
