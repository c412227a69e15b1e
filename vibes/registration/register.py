"""Registering this app's callbacks with Vibes: every type it reads, on the API that offers it.

Registering twice changes nothing. A registration of ours whose credentials,
method, content type, scope or end date differ from what we want is updated
in place (PUT), and a second one of ours for the same type is cancelled, so
that Vibes posts each event once. Registrations of other URLs are left
alone. Connect only registers (it publishes no list, change or cancel): a
Connect registration is made again when our URL changed.
"""

from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext_lazy, pgettext_lazy

from ..client import VibesClient
from ..exceptions import VibesAuthError, VibesConnectionError, VibesError, VibesTimeout
from ..models import ConnectCallback
from .overview import (
    API_NAMES,
    CONNECT,
    CURRENT,
    MISSING,
    OUTDATED,
    PLATFORM,
    Overview,
    Row,
    callbacks_overview,
    registration_details,
)
from .url import digest

REGISTERED = "registered"
UPDATED = "updated"
UNCHANGED = "unchanged"
CANCELLED = "cancelled"
NOT_OFFERED = "not_offered"
FAILED = "failed"
ACTION_LABELS = {
    REGISTERED: pgettext_lazy("what became of a callback registration", "registered"),
    UPDATED: pgettext_lazy("what became of a callback registration", "updated"),
    UNCHANGED: gettext_lazy("already registered, unchanged"),
    CANCELLED: gettext_lazy("a second registration of this URL, cancelled"),
    NOT_OFFERED: gettext_lazy("not registered: no Vibes API registers this type"),
    FAILED: gettext_lazy("refused by Vibes"),
}


@dataclass(frozen=True)
class Change:
    api: str
    callback_type: str
    action: str
    registration_id: str = ""
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.action == FAILED

    @property
    def line(self) -> str:
        text = f"{API_NAMES.get(self.api, '—')} {self.callback_type}: {ACTION_LABELS[self.action]}"
        if self.registration_id:
            text += f" ({self.registration_id})"
        return f"{text}: {self.detail}" if self.detail else text


def callbacks_register(*, client: VibesClient, connect_again: bool = False) -> list[Change]:
    """Register our callbacks URL for every type we read, on the API that offers it; idempotent.

    Connect cannot be asked what it holds, so a Connect registration recorded
    as current is trusted; `connect_again` registers it all the same (Connect
    keeps one URL per type and short code, so this changes nothing else).

    A type Vibes refuses is reported and the others go on; what was done
    stays done, and a second run takes up from there. Raises
    CallbacksNotConfigured, or a VibesError when the registrations cannot be
    read or Vibes cannot be reached or refuses our credentials.
    """
    overview = callbacks_overview(client=client)
    changes = []
    for row in overview.rows:
        try:
            changes += _register_one(client, overview, row, connect_again)
        except (VibesConnectionError, VibesTimeout, VibesAuthError):
            raise
        except VibesError as error:
            changes.append(Change(row.wanted.api, row.wanted.callback_type, FAILED, detail=str(error)))
    return changes


def _register_one(client: VibesClient, overview: Overview, row: Row, connect_again: bool) -> list[Change]:
    callback_type, api = row.wanted.callback_type, row.wanted.api
    if api == PLATFORM:
        details = registration_details(callback_type)
        if row.state == MISSING:
            made = client.register_callback(callback_type, url=overview.url, details=details)
            changes = [Change(api, callback_type, REGISTERED, made.id)]
        elif row.state == OUTDATED:
            client.update_callback(row.registration.id, callback_type, url=overview.url, details=details)
            changes = [Change(api, callback_type, UPDATED, row.registration.id)]
        else:
            changes = [Change(api, callback_type, UNCHANGED, row.registration.id)]
        for duplicate in row.duplicates:
            # Two registrations of our URL would post every event twice.
            client.cancel_callback(duplicate.id)
            changes.append(Change(api, callback_type, CANCELLED, duplicate.id))
        return changes
    if api == CONNECT:
        if row.state == CURRENT and not connect_again:
            return [Change(api, callback_type, UNCHANGED, row.registration.id)]
        made = client.register_connect_callback(callback_type, url=overview.url)
        ConnectCallback.objects.update_or_create(
            callback_type=callback_type,
            short_code=client.short_code,
            defaults={
                "vibes_id": made.id[:64],
                "shown_url": overview.shown_url[:500],
                "url_digest": digest(overview.url),
                "registered_at": timezone.now(),
            },
        )
        return [Change(api, callback_type, REGISTERED if row.state == MISSING else UPDATED, made.id)]
    return [Change(api, callback_type, NOT_OFFERED)]
