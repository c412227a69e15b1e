"""Tracked links: what making a batch's short links adds to sending it, and
what a click costs, with LINK_ROWS links already made (1,000,000 by default:
a Send of 500,000 people with two web addresses).

A batch is BATCH_SPAN result ids, of which about a quarter are calls when
a quarter of the audience qualifies (50), all of them at most (200). No
target: the figures go to the README.
"""

import os

import pytest
from django.db import connection, transaction
from django.urls import reverse

from marketing_activities.links import new_codes, sms_texts_for_calls
from marketing_activities.models import CampaignRun, FlowStep, Outcome, RunResult, SmsMessage, TrackedLink
from marketing_activities.runner import run_create, run_execute
from marketing_activities.runner.planner import BATCH_SPAN
from smscampaigns.models import Lead
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.marketing_activities.factories import RunStepFactory
from tests.vibes.factories import VibesListFactory
from tests.vibes.simulated import SIM_COMPANY_KEY, SIM_PASSWORD, SIM_SHORT_CODE, SIM_USERNAME, make_client
from vibes.demo import DEMO_LISTS
from vibes.simulator import VibesSimulator

pytestmark = pytest.mark.django_db

LINK_ROWS = int(os.environ.get("LINK_ROWS", 1_000_000))
TEXT = "Hi {{lead.first_name}}, 20% off: https://shop.example.com/sale?n={{lead.first_name}} or https://example.org/b"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """LINK_ROWS links of earlier sends, and people to send to."""
    with django_db_blocker.unblock(), transaction.atomic():
        leads = Lead.objects.bulk_create(
            Lead(first_name=f"P{n}", email=f"p{n}@example.com", mobile_phone=f"+1555{n:07d}")
            for n in range(2 * BATCH_SPAN)
        )
        earlier = RunStepFactory(action=FlowStep.Action.SEND_SMS, message_text=TEXT, track_links=True)
        table = connection.ops.quote_name(TrackedLink._meta.db_table)
        with connection.cursor() as cursor:
            for start in range(0, LINK_ROWS, 50_000):
                cursor.executemany(
                    f"INSERT INTO {table} (code, run_step_id, result_id, lead_id, position, url, created_at) "
                    f"VALUES (%s, %s, %s, %s, %s, %s, CURRENT_TIMESTAMP)",
                    [
                        (code, earlier.pk, 10**9 + n // 2, leads[0].pk, n % 2, "https://example.org/b")
                        for n, code in enumerate(new_codes(min(50_000, LINK_ROWS - start)), start)
                    ],
                )
        yield leads
        transaction.set_rollback(True)


def _batch(leads, size, *, track_links):
    step = RunStepFactory(action=FlowStep.Action.SEND_SMS, message_text=TEXT, track_links=track_links)
    rows = RunResult.objects.bulk_create(
        RunResult(run_step=step, lead=lead, outcome=Outcome.SENDING, phone=lead.mobile_phone)
        for lead in leads[:size]
    )
    return step, [(row.pk, row.lead_id, row.phone) for row in rows]


@pytest.mark.parametrize("size", [BATCH_SPAN // 4, BATCH_SPAN])
@pytest.mark.parametrize("track_links", [False, True], ids=["untracked", "tracked"])
def test_a_batchs_texts(benchmark, world, size, track_links):
    """The texts of one batch's calls, stored before the calls; with tracked links, their links made too."""
    batches = []

    def make():
        step, rows = _batch(world, size, track_links=track_links)
        batches.append((step, rows))
        return (), {}

    def run():
        step, rows = batches[-1]
        sms_texts_for_calls(step=step, rows=rows)

    benchmark.pedantic(run, setup=make, rounds=10, warmup_rounds=1, iterations=1)


def test_a_click(benchmark, world, client):
    """A person's click: the link found by its code, the click recorded, the redirect."""
    step, rows = _batch(world, 1, track_links=True)
    sms_texts_for_calls(step=step, rows=rows)
    path = reverse("short_link", args=[TrackedLink.objects.get(result_id=rows[0][0], position=0).code])
    browser = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}
    response = benchmark.pedantic(
        lambda: client.get(path, headers=browser), rounds=20, warmup_rounds=2, iterations=1
    )
    assert response.status_code == 302


# --- A whole send ---------------------------------------------------------------------

SEND_PEOPLE = int(os.environ.get("LINK_SEND_PEOPLE", 2_000))


@pytest.fixture(scope="module")
def simulator():
    """The simulator in this process (as the tests have it), answering at once, without a rate limit."""
    server = VibesSimulator(
        company_key=SIM_COMPANY_KEY,
        username=SIM_USERNAME,
        password=SIM_PASSWORD,
        short_code=SIM_SHORT_CODE,
        lists=DEMO_LISTS,
        seed=1234,
    )
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("track_links", [False, True], ids=["untracked", "tracked"])
def test_a_send_of_thousands(benchmark, simulator, track_links):
    """SEND_PEOPLE SMS with two web addresses each, 16 calls in flight: planned, sent, recorded."""
    news = VibesListFactory(vibes_id="101", name="SMS Newsletter")
    for n in range(SEND_PEOPLE):
        subscribed(news, first_name=f"P{n}", mobile_phone=f"+1212{n:07d}")
    runs = []

    def prepare():
        simulator.reset()
        campaign = make_campaign(("send", news))
        SmsMessage.objects.filter(flow_steps__campaign=campaign).update(
            text=TEXT, dont_track_links=not track_links
        )
        runs.append(run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND))
        return (), {}

    client = make_client(simulator.url)
    benchmark.pedantic(
        lambda: run_execute(run=runs[-1], client=client, concurrency=16),
        setup=prepare,
        rounds=3,
        iterations=1,
    )
    assert runs[-1].steps.get().counts["sent"] == SEND_PEOPLE
    assert TrackedLink.objects.filter(run_step__run=runs[-1]).count() == (
        2 * SEND_PEOPLE if track_links else 0
    )
