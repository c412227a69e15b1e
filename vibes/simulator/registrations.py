"""Platform callbacks: where Vibes posts an event, and the registrations that say so.

`config/callbacks` lists, registers, gets, updates and cancels
registrations, and `config/callback_events/test` posts a test event of a
type to its registered URLs. A Platform event goes to the URLs registered
for its type (and its list or campaign, when the registration names one),
else to the configured `callback_url`.
"""

from urllib.parse import urlsplit

from ..callback_types import PLATFORM_TYPES
from .protocol import now_iso, platform_error


class CallbackRegistrations:
    """Part of VibesSimulator: `_op_<operation>` answers one request, with its lock held."""

    def _callback(self, event_type, payload):
        """Post a Platform callback to every URL registered for its type (and its list or
        campaign, when the registration names one); when none is registered for the type,
        to the configured callback URL."""
        if not self._poster:
            return
        registered = [r for r in self.state.registrations.values() if r["callback_type"] == event_type]
        urls = [r["destination"]["url"] for r in registered if _in_scope(r, payload)]
        if not registered and self.config["callback_url"]:
            urls = [self.config["callback_url"]]
        for url in urls:
            self._poster.put(url, event_type, payload, header_event_type=True)

    def _registration_resource(self, registration) -> dict:
        return {
            **registration,
            "url": f"/companies/{self.company_key}/config/callbacks/{registration['callback_id']}",
        }

    def _registration_from(self, body, *, callback_id, created_date) -> dict:
        callback_type = _known_type(body)
        destination = body.get("destination")
        url = destination.get("url") if isinstance(destination, dict) else None
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise platform_error(400, "destination.url must be an http or https URL.", "INVALIDDESTINATION")
        method = destination.get("method") or "POST"
        content_type = destination.get("content_type") or "application/json"
        if method not in ("POST", "PUT") or content_type not in ("application/json", "text/json"):
            raise platform_error(400, "Unsupported destination method or content type.", "INVALIDDESTINATION")
        scope = body.get(callback_type)
        if scope is not None and not isinstance(scope, dict):
            raise platform_error(400, f"{callback_type} must be an object.", 400)
        if callback_type == "unmatched_message_received" and not (scope or {}).get("source_code"):
            raise platform_error(400, "unmatched_message_received.source_code is required.", 400)
        if callback_type == "event_processed" and scope is None:
            raise platform_error(400, "event_processed is required.", 400)
        for other in self.state.registrations.values():
            if (
                other["callback_id"] != callback_id
                and other["callback_type"] == callback_type
                and other["destination"]["url"] == url
            ):
                raise platform_error(
                    409, "A callback of this type is already registered for this URL.", "DUPLICATECALLBACK"
                )
        registration = {
            "callback_id": callback_id,
            "callback_type": callback_type,
            "destination": {"url": url, "method": method, "content_type": content_type},
            "created_date": created_date,
            "updated_date": now_iso(),
        }
        if scope:
            registration[callback_type] = dict(scope)
        for name in ("start_date", "end_date"):
            if body.get(name):
                registration[name] = str(body[name])
        return registration

    def _op_list_callbacks(self, **_):
        return 200, [self._registration_resource(r) for r in self.state.registrations.values()]

    def _op_register_callback(self, *, body, **_):
        callback_id = f"SIM-CB-{next(self.state.registration_seq):05d}"
        registration = self._registration_from(body, callback_id=callback_id, created_date=now_iso())
        self.state.registrations[callback_id] = registration
        return 200, self._registration_resource(registration)

    def _known_registration(self, params) -> dict:
        registration = self.state.registrations.get(params["callback_id"])
        if registration is None:
            raise platform_error(404, "The callback_id is not recognized.", 404)
        return registration

    def _op_get_callback(self, *, params, **_):
        return 200, self._registration_resource(self._known_registration(params))

    def _op_update_callback(self, *, params, body, **_):
        old = self._known_registration(params)
        registration = self._registration_from(
            body, callback_id=old["callback_id"], created_date=old["created_date"]
        )
        self.state.registrations[old["callback_id"]] = registration
        return 200, self._registration_resource(registration)

    def _op_cancel_callback(self, *, params, **_):
        registration = self._known_registration(params)
        del self.state.registrations[registration["callback_id"]]
        return 200, self._registration_resource(registration)

    def _op_test_callback(self, *, body, **_):
        """Post a test event of the type to every URL registered for it, as Vibes does."""
        callback_type = _known_type(body)
        registrations = [r for r in self.state.registrations.values() if r["callback_type"] == callback_type]
        if not registrations:
            raise platform_error(404, "An active callback does not exist.", 404)
        event_id = f"SIM-EVT-{next(self.state.event_seq):07d}"
        payload = {"event_id": event_id, **self._test_payload(callback_type, body)}
        if self._poster:
            for registration in registrations:
                self._poster.put(
                    registration["destination"]["url"], callback_type, payload, header_event_type=True
                )
        return 200, {"message": f"A test {callback_type} callback was queued.", "event_id": event_id}

    def _test_payload(self, callback_type, body) -> dict:
        """The test event, shaped like the real one, with the person and list the request gave."""
        now = now_iso()
        if callback_type in ("subscription_added", "subscription_removed"):
            subscription = body.get("subscription") if isinstance(body.get("subscription"), dict) else {}
            list_id = (subscription.get("subscription_list") or {}).get("id")
            if not list_id:
                raise platform_error(400, "subscription.subscription_list.id is required.", 400)
            payload = {
                "person": {"id": str((subscription.get("person") or {}).get("id") or "SIM-TEST-PERSON")},
                "subscription_list": self.state.list_ref(str(list_id)),
                "opt_in_date": now,
            }
            if callback_type == "subscription_removed":
                payload.update(opt_out_date=now, opt_out_reason="test")
            return payload
        if callback_type in ("ack_participant_added", "ack_participant_changed"):
            participant = body.get("participant") if isinstance(body.get("participant"), dict) else {}
            campaign = participant.get("acquisition_campaign") or {}
            if not campaign.get("api_key"):
                raise platform_error(400, "participant.acquisition_campaign.api_key is required.", 400)
            payload = {
                "person": {"id": str(participant.get("id") or "SIM-TEST-PERSON")},
                "acquisition_campaign": {
                    "acquisition_id": str(campaign["api_key"]),
                    "description": str(campaign.get("description") or ""),
                    "keyword": str(campaign.get("keyword") or ""),
                },
                "participation_date": now,
                "status": "pending",
            }
            list_id = (participant.get("subscription_list") or {}).get("id")
            if list_id:
                payload["subscription_list"] = self.state.list_ref(str(list_id))
            mdn = (participant.get("mobile_phone") or {}).get("mdn")
            if mdn:
                payload["mobile_phone"] = {"mdn": str(mdn)}
            return payload
        return {k: v for k, v in body.items() if k != "callback_type"}


def _known_type(body) -> str:
    callback_type = body.get("callback_type")
    if callback_type not in PLATFORM_TYPES:
        raise platform_error(400, f"Unknown callback_type {callback_type!r}.", "INVALIDCALLBACKTYPE")
    return callback_type


def _in_scope(registration, payload) -> bool:
    scope = registration.get(registration["callback_type"]) or {}
    list_id = scope.get("list_id")
    if list_id and str((payload.get("subscription_list") or {}).get("id")) != str(list_id):
        return False
    campaign_id = scope.get("campaign_id")
    acquisition = payload.get("acquisition_campaign") or {}
    if campaign_id and str(acquisition.get("acquisition_id")) != str(campaign_id):
        return False
    return True
