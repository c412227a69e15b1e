"""What the simulated Vibes holds for its company, in memory: lists and
acquisition campaigns, persons (keyed by number), subscriptions and pending
participants, SMS, the texts phones sent, and callback registrations.

A list's subscribers are served in pages in the order they joined, so that
one who leaves while a client pages moves the later ones forward, as offset
paging does.

No threads and no HTTP here: the simulator holds its lock while it reads or
changes the state, and posts the callbacks a change calls for.
"""

import itertools

from .protocol import now_iso, platform_error


class VibesState:
    """A company's data at Vibes; a reset starts a new one from the same seed."""

    def __init__(self, *, company_key: str, lists=(), subscribers=()):
        self.company_key = company_key
        self.lists = {str(item["id"]): {"id": str(item["id"]), "name": item["name"]} for item in lists}
        self.campaigns = {
            str(c["acquisition_id"]): {
                "acquisition_id": str(c["acquisition_id"]),
                "description": c.get("description", ""),
                "keywords": list(c.get("keywords", [])),
                "status": c.get("status", "active"),
                "end_date": c.get("end_date", ""),
                "list_id": str(item["id"]),
            }
            for item in lists
            for c in item.get("acquisition_campaigns", [])
        }
        self.persons: dict[str, dict] = {}  # by number
        self.numbers_by_person_key: dict[str, str] = {}
        self.numbers_by_external_id: dict[str, str] = {}
        self._person_seq = itertools.count(1)
        self.subscriptions: dict[tuple[str, str], dict] = {}  # (list id, number)
        # Each list's current subscribers in the order they joined, and the
        # same as a list for paging, rebuilt after a change.
        self._members: dict[str, dict[str, None]] = {list_id: {} for list_id in self.lists}
        self._member_snapshots: dict[str, list[str]] = {}
        self.pending: dict[tuple[str, str], dict] = {}  # (list id, number) awaiting "Y"
        self.blocks: set[tuple[str, str]] = set()  # (acquisition id, number) that replied "N"
        self.messages: list[dict] = []  # SMS sent
        self.message_seq = itertools.count(1)
        self.inbound: list[dict] = []  # what phones texted to the short code
        self.inbound_seq = itertools.count(1)
        self.registrations: dict[str, dict] = {}  # Platform callbacks by callback_id
        self.registration_seq = itertools.count(1)
        self.connect_callbacks: dict[tuple[str, str], dict] = {}  # (type, short code)
        self.event_seq = itertools.count(1)
        for row in subscribers:
            self.subscribe_now(**row)

    # --- Acquisition campaigns ------------------------------------------------------

    def set_campaign(
        self, acquisition_id: str, *, list_id=None, description=None, status=None, end_date=None
    ):
        """Add an acquisition campaign, or change one: its list, name, status (any word), end date."""
        campaign = self.campaigns.get(str(acquisition_id))
        if campaign is None:
            if list_id is None or str(list_id) not in self.lists:
                raise ValueError(f"a new acquisition campaign needs a known list_id, not {list_id!r}")
            campaign = self.campaigns[str(acquisition_id)] = {
                "acquisition_id": str(acquisition_id),
                "description": str(acquisition_id),
                "keywords": [],
                "status": "active",
                "end_date": "",
                "list_id": str(list_id),
            }
        for name, value in (
            ("list_id", list_id),
            ("description", description),
            ("status", status),
            ("end_date", end_date),
        ):
            if value is not None:
                campaign[name] = str(value)

    def campaign_with_keyword(self, word: str) -> dict | None:
        """The active acquisition campaign a phone joins by texting `word` (in capitals)."""
        return next(
            (
                c
                for c in self.campaigns.values()
                if c["status"] == "active" and word in {k.upper() for k in c["keywords"]}
            ),
            None,
        )

    # --- Persons and subscriptions --------------------------------------------------

    def person(self, mdn: str, external_person_id: str = "", custom_fields: dict | None = None) -> dict:
        """The person with this number, created when new; the first external id given wins."""
        person = self.persons.get(mdn)
        if person is None:
            person = {
                "person_key": f"SIM{next(self._person_seq):08d}",
                "external_person_id": "",
                "mdn": mdn,
                "created_at": now_iso(),
                "custom_fields": {},
            }
            self.persons[mdn] = person
            self.numbers_by_person_key[person["person_key"]] = mdn
        if custom_fields:
            person["custom_fields"].update({str(k): str(v) for k, v in custom_fields.items()})
        if external_person_id and not person["external_person_id"]:
            if external_person_id in self.numbers_by_external_id:
                raise platform_error(
                    422,
                    "The external_person_id is already in use by another person.",
                    "EXTERNALPERSONIDMISMATCH",
                )
            person["external_person_id"] = external_person_id
            self.numbers_by_external_id[external_person_id] = mdn
        return person

    def number_of(self, params: dict) -> str | None:
        """The number of the person a path names, by external id or person key."""
        if "external_person_id" in params:
            return self.numbers_by_external_id.get(params["external_person_id"])
        return self.numbers_by_person_key.get(params["person_key"])

    def subscribed(self, list_id: str, mdn) -> bool:
        subscription = self.subscriptions.get((list_id, mdn))
        return subscription is not None and not subscription.get("opt_out_date")

    def subscribe_now(
        self, *, list_id, mdn, external_person_id="", opt_in_date="", custom_fields=None
    ) -> dict:
        """Make the number subscribed to the list, as of `opt_in_date` (default: now)."""
        person = self.person(mdn, external_person_id, custom_fields)
        self.subscriptions[(str(list_id), mdn)] = {"opt_in_date": opt_in_date or now_iso()}
        self.join(str(list_id), mdn)
        return person

    def join(self, list_id: str, mdn: str) -> None:
        members = self._members.setdefault(list_id, {})
        # Joining again puts the number at the end, as a new subscription.
        members.pop(mdn, None)
        members[mdn] = None
        self._member_snapshots.pop(list_id, None)

    def leave(self, list_id: str, mdn: str) -> None:
        if self._members.get(list_id, {}).pop(mdn, 0) is None:
            self._member_snapshots.pop(list_id, None)

    def is_member(self, list_id: str, mdn) -> bool:
        return mdn in self._members.get(list_id, {})

    def subscriber_page(self, list_id: str, page: int, page_size: int) -> list[str]:
        """The numbers on one page (from 1) of the list's subscribers, in the order they joined."""
        snapshot = self._member_snapshots.get(list_id)
        if snapshot is None:
            snapshot = self._member_snapshots[list_id] = list(self._members.get(list_id, {}))
        start = (page - 1) * page_size
        return snapshot[start : start + page_size]

    def subscription_rows(self) -> list[dict]:
        """Every subscription and pending participant: list_id, mdn, status, ..."""
        rows = [
            {
                "list_id": list_id,
                "mdn": mdn,
                "external_person_id": self.persons[mdn]["external_person_id"],
                "status": "unsubscribed" if sub.get("opt_out_date") else "subscribed",
                **sub,
            }
            for (list_id, mdn), sub in self.subscriptions.items()
        ]
        rows += [
            {
                "list_id": list_id,
                "mdn": mdn,
                "external_person_id": self.persons[mdn]["external_person_id"],
                "status": "pending",
                **pending,
            }
            for (list_id, mdn), pending in self.pending.items()
        ]
        return rows

    # --- Resources, shaped as the contract shapes them ------------------------------

    def person_url(self, person_key: str) -> str:
        return f"/companies/{self.company_key}/mobiledb/persons/{person_key}"

    def person_resource(self, mdn) -> dict:
        """The person as a callback names them."""
        person = self.persons[mdn]
        key = person["person_key"]
        return {
            "person": {"id": key, "person_key": key, "url": self.person_url(key)},
            "external_person_id": person["external_person_id"],
            "mobile_phone": {"mdn": mdn},
        }

    def person_body(self, mdn) -> dict:
        """The contract's person resource."""
        person = self.persons[mdn]
        body = {
            "person_key": person["person_key"],
            "external_person_id": person["external_person_id"],
            "mobile_phone": {"mdn": mdn},
            "created_at": person["created_at"],
            "updated_at": person["created_at"],
            "url": self.person_url(person["person_key"]),
        }
        if person["custom_fields"]:
            body["custom_fields"] = dict(person["custom_fields"])
        return body

    def list_ref(self, list_id) -> dict:
        return {
            "id": list_id,
            "name": self.lists.get(list_id, {}).get("name", ""),
            "url": f"/companies/{self.company_key}/mobiledb/subscription_lists/{list_id}",
        }

    def campaign_resource(self, campaign) -> dict:
        resource = {
            "acquisition_id": campaign["acquisition_id"],
            "description": campaign["description"],
            "campaign_type": {"code": "acquisition"},
            "status": campaign["status"],
            "acquisition_campaign": {"keywords": campaign["keywords"]},
            "url": f"/companies/{self.company_key}/campaigns/acquisition/{campaign['acquisition_id']}",
        }
        if campaign["end_date"]:
            resource["end_date"] = campaign["end_date"]
        return resource
