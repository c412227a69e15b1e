"""What this app wants registered with Vibes, and what is: a row per event type it reads.

A registration is ours when its URL has our scheme, host, port and path.
Connect cannot be asked what it holds: what we registered there is kept in
ConnectCallback.
"""

import hmac
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy

from ..callback_types import CONNECT_TYPES, PLATFORM_TYPES
from ..callbacks import APPLIERS
from ..client import VibesClient
from ..models import ConnectCallback
from ..redaction import url_without_password
from ..times import vibes_end
from ..types import CallbackRegistration
from .url import callbacks_url, digest, place

PLATFORM = "platform"
CONNECT = "connect"
API_NAMES = {PLATFORM: "Platform", CONNECT: "Connect"}

# What a registration of ours looks like once registered as we want it.
METHOD = "POST"
CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Wanted:
    """An event type the product reads, and the API that registers it ("" when neither does)."""

    callback_type: str
    api: str


def callbacks_wanted() -> list[Wanted]:
    wanted = []
    for callback_type in sorted(APPLIERS):
        api = (
            PLATFORM if callback_type in PLATFORM_TYPES else CONNECT if callback_type in CONNECT_TYPES else ""
        )
        wanted.append(Wanted(callback_type, api))
    return wanted


def registration_details(callback_type: str) -> dict | None:
    """The type's own object in a Platform registration. None: every list and campaign."""
    if callback_type == "unmatched_message_received":
        # Required: the code whose unmatched messages are wanted, ours.
        return {"source_code": settings.VIBES_SHORT_CODE, "country_code": settings.PHONE_DEFAULT_REGION}
    return None


CURRENT = "current"
OUTDATED = "outdated"
MISSING = "missing"
UNSUPPORTED = "unsupported"
STATE_LABELS = {
    CURRENT: gettext_lazy("registered"),
    OUTDATED: gettext_lazy("registered, but out of date"),
    MISSING: gettext_lazy("not registered"),
    UNSUPPORTED: gettext_lazy("no Vibes API registers this type"),
}


@dataclass
class Row:
    """One type we read and its registration: the one of ours to keep, and any second ones."""

    wanted: Wanted
    state: str
    registration: CallbackRegistration | None = None
    duplicates: list[CallbackRegistration] = field(default_factory=list)
    registered_at: datetime | None = None  # Connect: when we registered it (Connect tells nothing)

    @property
    def api_name(self) -> str:
        return API_NAMES.get(self.wanted.api, "—")

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state])


@dataclass
class Overview:
    url: str = field(repr=False)
    rows: list[Row]
    others: list[CallbackRegistration]

    @property
    def shown_url(self) -> str:
        return url_without_password(self.url)


def _expired(end_date: str) -> bool:
    """True when a registration's end date has come: Vibes posts nothing for it any more.

    A bare date has come from the start of that day.
    """
    end = vibes_end(end_date, whole_day=False)
    return end is not None and end <= timezone.now()


def _as_wanted(registration: CallbackRegistration, url: str) -> bool:
    details = registration_details(registration.callback_type) or {}
    return (
        registration.url == url
        and registration.method.upper() in ("", METHOD)
        and registration.content_type.lower() in ("", CONTENT_TYPE)
        and registration.scope == tuple(sorted((k, str(v)) for k, v in details.items()))
        and not _expired(registration.end_date)
    )


def callbacks_overview(*, client: VibesClient) -> Overview:
    """What is registered for each type we read, and Vibes' other registrations.

    Raises CallbacksNotConfigured, or a VibesError when the Platform cannot be asked.
    """
    url = callbacks_url()
    ours_place = place(url)
    platform = client.list_callbacks()
    connect = {(c.callback_type, c.short_code): c for c in ConnectCallback.objects.all()}
    rows, used = [], set()
    for wanted in callbacks_wanted():
        if wanted.api == PLATFORM:
            ours = [
                r for r in platform if r.callback_type == wanted.callback_type and place(r.url) == ours_place
            ]
            # The one to keep: one registered as we want it, else the first.
            ours.sort(key=lambda r: not _as_wanted(r, url))
            used.update(id(r) for r in ours)
            if not ours:
                rows.append(Row(wanted, MISSING))
            else:
                state = CURRENT if _as_wanted(ours[0], url) else OUTDATED
                rows.append(Row(wanted, state, ours[0], ours[1:]))
        elif wanted.api == CONNECT:
            record = connect.get((wanted.callback_type, client.short_code))
            if record is None:
                rows.append(Row(wanted, MISSING))
                continue
            registration = CallbackRegistration(
                api=CONNECT,
                id=record.vibes_id,
                callback_type=record.callback_type,
                url=record.shown_url,
                short_code=record.short_code,
            )
            state = CURRENT if hmac.compare_digest(record.url_digest, digest(url)) else OUTDATED
            rows.append(Row(wanted, state, registration, registered_at=record.registered_at))
        else:
            rows.append(Row(wanted, UNSUPPORTED))
    others = [r for r in platform if id(r) not in used]
    return Overview(url=url, rows=rows, others=others)
