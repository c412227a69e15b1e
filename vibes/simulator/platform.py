"""The Platform API operations: lists, acquisition campaigns and their
participants, persons, a list's subscribers, and subscriptions.

A list's subscribers are served in pages (`page`, `page_size`); the
contract itself documents that operation only as a search by number,
person key or external id, which is served too
(`configure(subscriber_paging=False)` serves only the search).
"""

from datetime import UTC, datetime
from urllib.parse import parse_qs

from .protocol import E164, now_iso, platform_error


class PlatformOperations:
    """Part of VibesSimulator: `_op_<operation>` answers one request, with its lock held."""

    def _op_lists(self, **_):
        base = f"/companies/{self.company_key}/mobiledb/subscription_lists"
        return 200, [
            {
                "id": item["id"],
                "name": item["name"],
                "url": f"{base}/{item['id']}",
                "subscribers_url": f"{base}/{item['id']}/subscribers",
                "acquisition_campaigns_url": f"{base}/{item['id']}/acquisition_campaigns",
            }
            for item in self.state.lists.values()
        ]

    def _op_list_campaigns(self, *, params, **_):
        if params["list_id"] not in self.state.lists:
            raise platform_error(404, "The subscription_list_id cannot be found.", 404)
        return 200, [
            self.state.campaign_resource(c)
            for c in self.state.campaigns.values()
            if c["list_id"] == params["list_id"]
        ]

    def _op_campaigns(self, **_):
        return 200, [self.state.campaign_resource(c) for c in self.state.campaigns.values()]

    def _op_add_participant(self, *, params, body, **_):
        state = self.state
        campaign = state.campaigns.get(params["acquisition_id"])
        if campaign is None:
            raise platform_error(404, "The acquisition campaign cannot be found.", 404)
        mdn = (
            (body.get("mobile_phone") or {}).get("mdn")
            if isinstance(body.get("mobile_phone"), dict)
            else None
        )
        if not isinstance(mdn, str) or not E164.match(mdn):
            raise platform_error(
                400, "The supplied mobile number is not in proper mobile number format.", 400
            )
        if campaign["status"] != "active":
            raise platform_error(
                422, "The status code of the entity does not allow updates.", "UNPROCESSABLE ENTITY"
            )
        list_id = campaign["list_id"]
        if state.subscribed(list_id, mdn):
            raise platform_error(409, "Already subscribed.", 409)
        if (campaign["acquisition_id"], mdn) in state.blocks:
            raise platform_error(
                422,
                "The MDN has previously replied No to this acquisition campaign.",
                "MDNHASCONFIRMATIONBLOCK",
            )
        person = state.person(mdn, str(body.get("external_person_id") or ""))
        pending = state.pending.get((list_id, mdn))
        status = 200  # Vibes: 200 means a pending acquisition already exists
        if pending is None:
            status = 201
            window = float(self.config["confirmation_window"])
            # One moment for both, so the window is exactly the configured one.
            now = datetime.now(UTC)
            pending = state.pending[(list_id, mdn)] = {
                "acquisition_id": campaign["acquisition_id"],
                "participation_date": now_iso(now=now),
                "expire_date": now_iso(window, now=now),
            }
            confirm_after = self.config["confirm_after"]
            if confirm_after and self._scheduler:
                self._scheduler.call_later(
                    float(confirm_after), "confirm", self._confirm, list_id, mdn, self._generation
                )
            if self._scheduler:
                self._scheduler.call_later(
                    window, "expire", self._expire, list_id, mdn, pending, self._generation
                )
        return status, {
            "person": {
                "person_id": person["person_key"],
                "person_key": person["person_key"],
                "url": state.person_url(person["person_key"]),
            },
            "participation_date": pending["participation_date"],
            "expire_date": pending["expire_date"],
            "status": "PENDING",
        }

    @staticmethod
    def _query_mdn(values) -> str:
        mdn = values[0]
        if not E164.match(mdn):
            # What Vibes says when "+" arrives unencoded (it reads as a space).
            raise platform_error(
                400,
                "Invalid MDN format. If you are using E.164 format, be sure to include %2B in place of +.",
                400,
            )
        return mdn

    def _op_find_person(self, *, query, **_):
        mdn = self._query_mdn(parse_qs(query, keep_blank_values=True).get("mdn") or [""])
        if mdn not in self.state.persons:
            raise platform_error(404, "MDN not found.", 404)
        return 200, self.state.person_body(mdn)

    def _op_subscribers(self, *, params, query, **_):
        state = self.state
        list_id = params["list_id"]
        if list_id not in state.lists:
            raise platform_error(404, "The subscription_list_id cannot be found.", 404)
        values = parse_qs(query, keep_blank_values=True)
        if "mdn" in values or "person_key" in values or "external_person_id" in values:
            # The contract's search: one subscriber, or 404.
            if "mdn" in values:
                mdn = self._query_mdn(values["mdn"])
            elif "person_key" in values:
                mdn = state.numbers_by_person_key.get(values["person_key"][0])
            else:
                mdn = state.numbers_by_external_id.get(values["external_person_id"][0])
            if not state.is_member(list_id, mdn):
                raise platform_error(
                    404,
                    "The subscriber cannot be located or they are not subscribed to the specified list.",
                    404,
                )
            return 200, state.person_body(mdn)
        if not self.config["subscriber_paging"] or "page" not in values:
            raise platform_error(
                400, "Search by mdn, person_key or external_person_id: one of them is required.", 400
            )
        try:
            page = int(values["page"][0])
            page_size = int((values.get("page_size") or ["100"])[0])
        except ValueError:
            raise platform_error(400, "page and page_size must be whole numbers.", 400) from None
        if page < 1 or page_size < 1:
            raise platform_error(400, "page and page_size start at 1.", 400)
        page_size = min(page_size, self.config["max_page_size"])
        return 200, [state.person_body(mdn) for mdn in state.subscriber_page(list_id, page, page_size)]

    def _op_get_subscription(self, *, params, **_):
        mdn = self.state.number_of(params)
        list_id = params["list_id"]
        if not self.state.subscribed(list_id, mdn):
            raise platform_error(404, "The person cannot be found or is not subscribed to this list.", 404)
        return 200, [
            {
                "person": {"id": self.state.persons[mdn]["person_key"]},
                "subscription_list": {"id": list_id, "url": self.state.list_ref(list_id)["url"]},
                "opt_in_date": self.state.subscriptions[(list_id, mdn)]["opt_in_date"],
            }
        ]

    def _op_unsubscribe(self, *, params, **_):
        mdn = self.state.number_of(params)
        list_id = params["list_id"]
        cancelled = self.state.pending.pop((list_id, mdn), None)
        if self.state.subscribed(list_id, mdn):
            self._opt_out(list_id, mdn, "api_opt_out")
            return 204, None
        if cancelled is not None:
            return 204, None
        raise platform_error(
            404, "The person cannot be found or is already not subscribed to this list.", 404
        )
