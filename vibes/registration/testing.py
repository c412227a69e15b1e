"""Testing this app's callbacks: Vibes' test events, and whether they arrive.

A test asks Vibes for its test event of each Platform type we registered
(Connect has no test event), with a marker as the person id that the
callbacks endpoint recognises, and waits until the endpoint has stored the
event or the deadline passes. A test event never changes a subscription.
"""

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from ..client import VibesClient
from ..exceptions import VibesError, VibesNotFound
from ..models import AcquisitionCampaign, CallbackEvent, CallbackTest, VibesList
from .overview import API_NAMES, CONNECT, CURRENT, PLATFORM, STATE_LABELS, UNSUPPORTED, callbacks_overview

ARRIVED = "arrived"
NOT_ARRIVED = "not_arrived"
REFUSED = "refused"
NOT_REGISTERED = "not_registered"
NO_TEST = "no_test"
# Outcomes that mean the callbacks do not work as they should.
FAILURES = frozenset({NOT_ARRIVED, REFUSED, NOT_REGISTERED})


@dataclass
class TestResult:
    api: str
    callback_type: str
    outcome: str
    detail: str
    test: CallbackTest | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURES

    @property
    def line(self) -> str:
        return f"{API_NAMES.get(self.api, '—')} {self.callback_type}: {self.detail}"


# The Platform types whose test event the app can send and recognise (its marker
# comes back as the person or participant id).
TESTABLE_TYPES = frozenset(
    {"subscription_added", "subscription_removed", "ack_participant_added", "ack_participant_changed"}
)


def callback_test_details(callback_type: str, marker: str) -> tuple[dict | None, str]:
    """The contract's test fields for a type, with the marker as the person; or (None, why not)."""
    if callback_type in ("subscription_added", "subscription_removed"):
        vibes_list = VibesList.objects.active().order_by("name", "pk").first()
        if vibes_list is None:
            return None, _("No Vibes list to test with: sync the Vibes lists first.")
        return {
            "subscription": {"person": {"id": marker}, "subscription_list": {"id": vibes_list.vibes_id}}
        }, ""
    if callback_type in ("ack_participant_added", "ack_participant_changed"):
        campaign = (
            AcquisitionCampaign.objects.running().select_related("vibes_list").order_by("name", "pk").first()
            or AcquisitionCampaign.objects.active()
            .select_related("vibes_list")
            .order_by("name", "pk")
            .first()
        )
        if campaign is None:
            return None, _("No acquisition campaign to test with: sync the Vibes lists first.")
        return {
            "participant": {
                "id": marker,
                "acquisition_campaign": {"api_key": campaign.vibes_id, "description": marker},
                "subscription_list": {"id": campaign.vibes_list.vibes_id},
            }
        }, ""
    return None, _("The Vibes contract has no test event of this type that the app can recognise.")


def _connect_result(callback_type: str) -> TestResult:
    last = (
        CallbackEvent.objects.filter(event_type=callback_type)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    if last is None:
        seen = _("none has arrived yet")
    else:
        seen = _("the last arrived at %(time)s") % {
            "time": timezone.localtime(last).strftime("%Y-%m-%d %H:%M:%S")
        }
    return TestResult(
        CONNECT,
        callback_type,
        NO_TEST,
        _("Connect has no test event; %(seen)s.") % {"seen": seen},
    )


def callbacks_test(*, client: VibesClient, deadline: float, poll_every: float = 0.2) -> list[TestResult]:
    """Ask Vibes for a test event of each Platform type we registered; wait up to `deadline`
    seconds for them at the callbacks endpoint; say for each type what happened.

    Raises CallbacksNotConfigured, or a VibesError when the registrations cannot be read.
    """
    overview = callbacks_overview(client=client)
    results: list[TestResult] = []
    waiting: list[TestResult] = []
    for row in overview.rows:
        callback_type, api = row.wanted.callback_type, row.wanted.api
        if api == CONNECT:
            results.append(_connect_result(callback_type))
            continue
        if api != PLATFORM:
            results.append(TestResult(api, callback_type, NO_TEST, str(STATE_LABELS[UNSUPPORTED])))
            continue
        if row.state != CURRENT:
            # A test would go to whatever URL is registered, not necessarily ours.
            results.append(
                TestResult(
                    api,
                    callback_type,
                    NOT_REGISTERED,
                    _("%(state)s for this app's URL: register it first.") % {"state": row.state_label},
                )
            )
            continue
        marker = f"{CallbackTest.MARKER_PREFIX}{secrets.token_hex(12)}"
        details, problem = callback_test_details(callback_type, marker)
        if details is None:
            results.append(TestResult(api, callback_type, NO_TEST, problem))
            continue
        # Stored before asking: the event may arrive before Vibes answers.
        test = CallbackTest.objects.create(
            callback_type=callback_type,
            marker=marker,
            wait_until=timezone.now() + timedelta(seconds=deadline),
        )
        result = TestResult(api, callback_type, NOT_ARRIVED, "", test)
        try:
            test.vibes_event_id = client.send_test_callback(callback_type, **details)[:100]
        except VibesNotFound:
            test.error = _("Vibes has no active callback of this type.")[:300]
            result.outcome, result.detail = REFUSED, test.error
        except VibesError as error:
            test.error = str(error)[:300]
            result.outcome, result.detail = REFUSED, _("Vibes refused the test: %(error)s") % {"error": error}
        test.save(update_fields=["vibes_event_id", "error"])
        results.append(result)
        if result.outcome == NOT_ARRIVED:
            waiting.append(result)

    _wait_for_arrivals([r.test for r in waiting], deadline, poll_every)
    for result in waiting:
        result.test.refresh_from_db()
        if result.test.arrived_at is not None:
            result.outcome = ARRIVED
            result.detail = _("the test event arrived after %(seconds).1f s.") % {
                "seconds": result.test.seconds_to_arrive
            }
        else:
            result.detail = _(
                "the test event did not arrive within %(seconds)g s: check that Vibes reaches "
                "%(url)s and that its credentials are the callback credentials."
            ) % {"seconds": deadline, "url": overview.shown_url}
    return results


def _wait_for_arrivals(tests: list[CallbackTest], deadline: float, poll_every: float) -> None:
    """Until every test has arrived, or `deadline` seconds have passed."""
    waiting = {test.pk for test in tests}
    give_up_at = time.monotonic() + deadline
    while waiting:
        waiting -= set(
            CallbackTest.objects.filter(pk__in=waiting, arrived_at__isnull=False).values_list("pk", flat=True)
        )
        if not waiting or time.monotonic() >= give_up_at:
            return
        time.sleep(poll_every)
