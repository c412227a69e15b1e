"""The Platform API operations: lists and acquisition campaigns, participants,
persons and subscriptions, a list's subscribers, and callback registrations.

Each returns the dataclasses of `vibes.types`, never raw dicts.
"""

from ..exceptions import VibesConflict, VibesNotFound, VibesPagingUnsupported
from ..types import (
    AcquisitionCampaignInfo,
    CallbackRegistration,
    ParticipantResult,
    PersonInfo,
    SubscriberInfo,
    SubscriptionInfo,
    SubscriptionListInfo,
)
from .transport import MAX_BODY_KEPT, Transport, segment


class PlatformOperations(Transport):
    """The Platform API (`platform_url`): everything but SMS."""

    # --- Platform API: lists and acquisition campaigns -----------------------

    def _company_url(self, *segments) -> str:
        return "/".join([self.platform_url, "companies", segment(self.company_key), *segments])

    def list_subscription_lists(self) -> list[SubscriptionListInfo]:
        data = self._json(self._request("GET", self._company_url("mobiledb", "subscription_lists", "")))
        return [
            SubscriptionListInfo(id=str(item.get("id", "")), name=str(item.get("name") or ""))
            for item in self._items(data)
            if item.get("id") not in (None, "")
        ]

    def list_acquisition_campaigns(self, list_id) -> list[AcquisitionCampaignInfo]:
        url = self._company_url(
            "mobiledb", "subscription_lists", segment(list_id), "acquisition_campaigns", ""
        )
        data = self._json(self._request("GET", url))
        campaigns = []
        for item in self._items(data):
            if item.get("acquisition_id") in (None, ""):
                continue
            keywords = (item.get("acquisition_campaign") or {}).get("keywords") or ()
            campaigns.append(
                AcquisitionCampaignInfo(
                    acquisition_id=str(item["acquisition_id"]),
                    name=str(item.get("description") or item.get("name") or ""),
                    status=str(item.get("status") or "").strip().lower(),
                    keywords=tuple(str(k) for k in keywords),
                    end_date=str(item.get("end_date") or ""),
                )
            )
        return campaigns

    # --- Platform API: participants, persons, subscriptions ------------------

    def add_participant(self, acquisition_id, *, mdn: str, external_person_id: str) -> ParticipantResult:
        """Add a person to an acquisition campaign; Vibes then texts them to confirm.

        409 (already subscribed) is returned as a success; 422 raises
        VibesUnprocessable with Vibes' code (e.g. MDNHASCONFIRMATIONBLOCK);
        400 (bad number) raises VibesBadRequest.
        """
        url = self._company_url("campaigns", "acquisition", segment(acquisition_id), "participants")
        body = {"mobile_phone": {"mdn": mdn}, "external_person_id": str(external_person_id)}
        try:
            data = self._json(self._request("POST", url, json=body))
        except VibesConflict:
            return ParticipantResult(status="subscribed", person_key="", already_subscribed=True)
        data = data if isinstance(data, dict) else {}
        # Vibes answers PENDING or SUBSCRIBED; 200 without a status means pending.
        status = "subscribed" if str(data.get("status") or "").lower() == "subscribed" else "pending"
        person = data.get("person") if isinstance(data.get("person"), dict) else {}
        return ParticipantResult(status=status, person_key=str(person.get("person_key") or ""))

    def _external_subscription_url(self, external_person_id, list_id) -> str:
        return self._company_url(
            "mobiledb",
            "persons",
            "external",
            segment(external_person_id),
            "subscriptions",
            segment(list_id),
        )

    def unsubscribe(self, list_id, *, external_person_id: str, mdn: str | None = None) -> bool:
        """Unsubscribe a person from a list. True: unsubscribed now; False: was not subscribed.

        Vibes answers 404 both for an unknown person and for one who is not
        subscribed: either way there is nothing left to do. The person may be
        known to Vibes under another external id (people sharing a number), so
        with `mdn` a 404 is retried by the person key found for that number.
        """
        url = self._external_subscription_url(external_person_id, list_id)
        try:
            self._request("DELETE", url)
            return True
        except VibesNotFound:
            if not mdn:
                return False
        person = self.find_person(mdn)
        if person is None or not person.person_key or person.external_person_id == str(external_person_id):
            return False
        url = self._company_url(
            "mobiledb", "persons", segment(person.person_key), "subscriptions", segment(list_id)
        )
        try:
            self._request("DELETE", url)
            return True
        except VibesNotFound:
            return False

    def get_subscription(self, list_id, *, external_person_id: str) -> SubscriptionInfo | None:
        """The person's subscription to this list, or None when Vibes knows none (404)."""
        url = self._external_subscription_url(external_person_id, list_id)
        try:
            data = self._json(self._request("GET", url))
        except VibesNotFound:
            return None
        # The contract answers a list of subscriptions; accept a single object too.
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        items = [i for i in items if isinstance(i, dict)]
        for item in items:
            if str((item.get("subscription_list") or {}).get("id", list_id)) == str(list_id):
                return SubscriptionInfo(
                    list_id=str(list_id),
                    opt_in_date=str(item.get("opt_in_date") or ""),
                    opt_out_date=str(item.get("opt_out_date") or ""),
                    opt_out_reason=str(item.get("opt_out_reason") or ""),
                )
        return None

    def find_person(self, mdn: str) -> PersonInfo | None:
        """The person with this number, or None (404)."""
        # `params` goes through urlencode, which writes the E.164 "+" as %2B as
        # Vibes requires (a bare "+" would be read as a space).
        try:
            data = self._json(
                self._request("GET", self._company_url("mobiledb", "persons"), params={"mdn": mdn})
            )
        except VibesNotFound:
            return None
        data = self._found(data)
        if data is None:
            return None
        return PersonInfo(
            person_key=str(data.get("person_key") or ""),
            external_person_id=str(data.get("external_person_id") or ""),
            mdn=str((data.get("mobile_phone") or {}).get("mdn") or mdn),
        )

    # --- Platform API: callback registrations ----------------------------------
    # The bodies carry our callbacks URL with its credentials: they are never
    # logged, and errors hide passwords in URLs (see _scrub).

    def list_callbacks(self) -> list[CallbackRegistration]:
        """Every callback registered for the company, whoever registered it."""
        data = self._json(self._request("GET", self._company_url("config", "callbacks", "")))
        return [self._platform_callback(item) for item in self._items(data)]

    def register_callback(self, callback_type: str, *, url: str, details=None) -> CallbackRegistration:
        """Register `url` for one callback type; `details` is the type's own object (e.g. a
        source code for unmatched messages). No details: every list and campaign."""
        body = self._callback_body(callback_type, url, details)
        data = self._json(self._request("POST", self._company_url("config", "callbacks", ""), json=body))
        return self._platform_callback(data if isinstance(data, dict) else {}, sent=body)

    def update_callback(
        self, callback_id, callback_type: str, *, url: str, details=None
    ) -> CallbackRegistration:
        """Rewrite a registration as if it were registered anew with these values."""
        body = self._callback_body(callback_type, url, details)
        data = self._json(
            self._request("PUT", self._company_url("config", "callbacks", segment(callback_id)), json=body)
        )
        return self._platform_callback(
            data if isinstance(data, dict) else {}, sent=body, callback_id=callback_id
        )

    def cancel_callback(self, callback_id) -> bool:
        """Cancel a registration. True: cancelled now; False: Vibes knew no such registration."""
        try:
            self._request("DELETE", self._company_url("config", "callbacks", segment(callback_id)))
        except VibesNotFound:
            return False
        return True

    def send_test_callback(self, callback_type: str, **details) -> str:
        """Ask Vibes to post a test event of this type to its registered URL; its event id, or "".

        `details` are the contract's test fields for the type (`subscription`,
        `participant`...). Vibes answers 404 when no active callback of the
        type is registered (VibesNotFound).
        """
        body = {"callback_type": callback_type, **details}
        data = self._json(
            self._request("POST", self._company_url("config", "callback_events", "test"), json=body)
        )
        return str(data.get("event_id") or "") if isinstance(data, dict) else ""

    @staticmethod
    def _callback_body(callback_type, url, details) -> dict:
        body = {
            "callback_type": callback_type,
            "destination": {"url": url, "method": "POST", "content_type": "application/json"},
        }
        if details:
            body[callback_type] = dict(details)
        return body

    @staticmethod
    def _platform_callback(item: dict, *, sent=None, callback_id="") -> CallbackRegistration:
        """A registration from Vibes' answer, or from what was sent when the answer has no body (201)."""
        if not item and sent:
            item = {**sent, "callback_id": callback_id}
        callback_type = str(item.get("callback_type") or "")
        destination = item.get("destination") if isinstance(item.get("destination"), dict) else {}
        scope = item.get(callback_type) if isinstance(item.get(callback_type), dict) else {}
        return CallbackRegistration(
            api="platform",
            id=str(item.get("callback_id") or callback_id or ""),
            callback_type=callback_type,
            url=str(destination.get("url") or ""),
            method=str(destination.get("method") or ""),
            content_type=str(destination.get("content_type") or ""),
            scope=tuple(sorted((str(k), str(v)) for k, v in scope.items() if v not in (None, ""))),
            end_date=str(item.get("end_date") or ""),
        )

    # --- Platform API: a list's subscribers -----------------------------------

    def _subscribers_url(self, list_id) -> str:
        return self._company_url("mobiledb", "subscription_lists", segment(list_id), "subscribers")

    def list_subscribers(self, list_id, *, page: int, page_size: int) -> list[SubscriberInfo]:
        """One page (1-indexed) of the list's subscribers; an empty page after the last.

        Beyond the contract: it documents `subscribers` as a search for one
        subscriber and publishes no paging for it. `page` and `page_size` are
        the paging Vibes publishes elsewhere (conventions.yml), and the answer
        is read as an array of the contract's person resource. Anything else
        raises VibesPagingUnsupported, so a caller can fall back to
        `find_subscriber`, which the contract does document.
        """
        data = self._json(
            self._request(
                "GET", self._subscribers_url(list_id), params={"page": page, "page_size": page_size}
            )
        )
        if data is None:
            return []
        if not isinstance(data, list):
            raise VibesPagingUnsupported(
                f"Vibes answered page {page} of list {list_id}'s subscribers with something other than "
                "a page (a JSON array of persons).",
                body=str(data)[:MAX_BODY_KEPT],
            )
        return [self._subscriber(item) for item in data if isinstance(item, dict)]

    def find_subscriber(self, list_id, *, mdn: str) -> SubscriberInfo | None:
        """The list's subscriber with this number, or None (404: unknown or not subscribed)."""
        try:
            data = self._json(self._request("GET", self._subscribers_url(list_id), params={"mdn": mdn}))
        except VibesNotFound:
            return None
        data = self._found(data)
        return None if data is None else self._subscriber(data, mdn=mdn)

    @staticmethod
    def _subscriber(item: dict, mdn: str = "") -> SubscriberInfo:
        phone = item.get("mobile_phone") if isinstance(item.get("mobile_phone"), dict) else {}
        fields = item.get("custom_fields") if isinstance(item.get("custom_fields"), dict) else {}
        return SubscriberInfo(
            person_key=str(item.get("person_key") or ""),
            external_person_id=str(item.get("external_person_id") or ""),
            mdn=str(phone.get("mdn") or mdn),
            custom_fields={str(k): str(v) for k, v in fields.items() if v is not None},
        )
