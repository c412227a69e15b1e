"""The list-driven subscriber sync against the simulator over real HTTP: keyword subscribers
found by number and linked, new leads for unknown numbers, leads Vibes does not list
unsubscribed, resumable, within the calls paging needs."""

import json
import math
import re
from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketing_activities.models import CampaignRun
from marketing_activities.runner import run_create, run_execute
from smscampaigns.models import Lead
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory
from tests.vibes.simulated import make_client
from vibes import subscriber_sync, sync_workers
from vibes.client import VibesClient
from vibes.exceptions import VibesServerError
from vibes.models import SubscriberSync, Subscription, SubscriptionChange, VibesList
from vibes.subscriber_sync import SubscriberSyncBusy, subscriber_sync_start, subscribers_sync
from vibes.sync import vibes_sync

pytestmark = pytest.mark.django_db

SUBSCRIBERS_PATH = "/companies/sim-company/mobiledb/subscription_lists/{}/subscribers"


@pytest.fixture
def news(vibes_client):
    vibes_sync(client=vibes_client)
    return VibesList.objects.get(vibes_id="101")


def text_keyword(simulator, mdn, keyword="JOIN"):
    """The phone texts the keyword to the short code (the simulator's control endpoint)."""
    response = requests.post(f"{simulator.url}/_simulator/keyword", json={"mdn": mdn, "keyword": keyword})
    response.raise_for_status()


def statuses(vibes_list):
    return dict(Subscription.objects.filter(vibes_list=vibes_list).values_list("lead_id", "status"))


def subscriber_calls(simulator, list_id="101"):
    return [
        r
        for r in simulator.requests_log()
        if r["path"] == SUBSCRIBERS_PATH.format(list_id) and r["method"] == "GET"
    ]


def send_to(vibes_list, simulator):
    """Run a campaign with one Send SMS Message step to the list; the numbers texted."""
    campaign = SmartCampaignFactory(
        smart_list__definition={"logic": "all", "rules": [{"field": "country", "op": "is", "value": "US"}]}
    )
    FlowStepFactory(campaign=campaign, position=0, vibes_list=vibes_list)
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    run_execute(run=run, client=make_client(simulator.url), concurrency=2)
    return sorted(m["to"] for m in simulator.messages())


# --- Done when ----------------------------------------------------------------------------------


def test_a_keyword_subscriber_is_linked_by_the_sync_and_then_texted_by_a_send(
    news, vibes_client, vibes_simulator
):
    joined = LeadFactory(first_name="Kim")  # in the CRM, joined the list by texting JOIN
    text_keyword(vibes_simulator, joined.mobile_phone)
    assert send_to(news, vibes_simulator) == []  # the product did not know yet

    sync = subscribers_sync(vibes_list=news, client=vibes_client)

    subscription = Subscription.objects.get(lead=joined, vibes_list=news)
    person = vibes_client.find_person(joined.mobile_phone)
    assert (subscription.status, subscription.vibes_person_key) == ("subscribed", person.person_key)
    assert (sync.linked, sync.changed, sync.created) == (1, 1, 0)
    assert send_to(news, vibes_simulator) == [joined.mobile_phone]


def test_a_lead_vibes_does_not_know_ends_unsubscribed_by_the_sync_and_is_not_texted(
    news, vibes_client, vibes_simulator
):
    stale = SubscriptionFactory(vibes_list=news, status="subscribed").lead  # its opt-out was missed
    sync = subscribers_sync(vibes_list=news, client=vibes_client)
    assert statuses(news) == {stale.pk: "unsubscribed"}
    [change] = SubscriptionChange.objects.filter(lead=stale)
    assert (change.source, change.old_status, change.new_status) == ("sync", "subscribed", "unsubscribed")
    assert (sync.changed, sync.unsubscribed) == (1, 1)
    assert send_to(news, vibes_simulator) == []


def test_an_unknown_keyword_subscriber_becomes_a_lead_with_what_vibes_knows(
    news, vibes_client, vibes_simulator
):
    vibes_simulator.add_subscriber(
        "101", "+15559870001", custom_fields={"First Name": "Ana", "last_name": "Ruiz", "Email": "Ana@X.test"}
    )
    text_keyword(vibes_simulator, "+15559870002")
    sync = subscribers_sync(vibes_list=news, client=vibes_client)
    leads = Lead.objects.order_by("mobile_phone").values_list(
        "mobile_phone", "first_name", "last_name", "email", "lead_source"
    )
    assert list(leads) == [
        ("+15559870001", "Ana", "Ruiz", "ana@x.test", "Vibes"),
        ("+15559870002", "", "", "", "Vibes"),
    ]
    assert set(Subscription.objects.values_list("lead__mobile_phone", "status")) == {
        ("+15559870001", "subscribed"),
        ("+15559870002", "subscribed"),
    }
    assert (sync.created, sync.linked, sync.changed) == (2, 2, 2)


def test_a_new_lead_leaves_out_an_email_another_lead_holds(news, vibes_client, vibes_simulator):
    """An email names one lead; the number decides who a subscriber is, never the email."""
    holder = LeadFactory(email="ana@x.test", mobile_phone="")
    vibes_simulator.add_subscriber("101", "+15559870001", custom_fields={"email": "ana@x.test"})
    subscribers_sync(vibes_list=news, client=vibes_client)
    created = Lead.objects.get(mobile_phone="+15559870001")
    assert (created.email, created.lead_source) == ("", "Vibes")
    assert not Subscription.objects.filter(lead=holder).exists()


def test_no_lead_is_created_with_no_create(news, vibes_simulator, capsys):
    text_keyword(vibes_simulator, "+15559870002")
    call_command("vibes_sync", "--subscriptions", "--no-create", verbosity=0)
    assert not Lead.objects.exists()
    assert "created: 0" in capsys.readouterr().out


class Kill(BaseException):
    """Stands for the process being killed: nothing gets to record a failure."""


def interrupt(how, simulator, after_pages=2):
    def progress(sync, done, total):
        if sync.phase == SubscriberSync.Phase.PAGES and sync.next_page == after_pages + 1:
            if how == "killed":
                raise Kill
            simulator.set_faults(error_rate=1)  # Vibes fails from now on

    return progress


@pytest.mark.parametrize("how", ["not interrupted", "killed", "vibes failing"])
def test_a_sync_started_again_continues_and_ends_in_the_same_state(how, news, vibes_client, vibes_simulator):
    known = [LeadFactory() for _ in range(3)]
    stale = SubscriptionFactory(vibes_list=news, status="subscribed").lead
    for lead in known:
        text_keyword(vibes_simulator, lead.mobile_phone)
    for n in range(4):
        text_keyword(vibes_simulator, f"+1555987{n:04d}")

    options = {"vibes_list": news, "client": vibes_client, "page_size": 2}
    if how != "not interrupted":
        with pytest.raises(Kill if how == "killed" else VibesServerError):
            subscribers_sync(**options, progress=interrupt(how, vibes_simulator))
        vibes_simulator.set_faults(error_rate=0)
        assert SubscriberSync.objects.get().next_page == 3  # two pages kept
    sync = subscribers_sync(**options)

    assert statuses(news) == {
        **{lead.pk: "subscribed" for lead in Lead.objects.exclude(pk=stale.pk)},
        stale.pk: "unsubscribed",
    }
    assert Lead.objects.filter(lead_source="Vibes").count() == 4
    # Each lead changed once: nothing was applied twice nor lost.
    changes = SubscriptionChange.objects.filter(effect="applied").values_list("lead_id", flat=True)
    assert sorted(changes) == sorted(Lead.objects.values_list("pk", flat=True))
    assert (sync.status, sync.subscribers, sync.created, sync.changed, sync.unsubscribed) == (
        "done",
        7,
        4,
        8,
        1,
    )
    assert SubscriberSync.objects.count() == 1
    # It went on from the page it had got to: no page was read twice.
    answered = Counter(r["status"] for r in subscriber_calls(vibes_simulator) if r["status"] < 500)
    assert answered == {200: math.ceil(7 / 2) + 1, 404: 1}  # the pages, the empty page; one check


def test_a_sync_killed_while_checking_continues_after_the_last_number_checked(
    news, vibes_client, vibes_simulator, monkeypatch
):
    monkeypatch.setattr(subscriber_sync, "CHECK_CHUNK", 2)
    stale = [SubscriptionFactory(vibes_list=news, status="subscribed").lead for _ in range(5)]

    def kill_after_first_chunk(sync, done, total):
        if sync.phase == SubscriberSync.Phase.CHECKS and done == 2:
            raise Kill

    with pytest.raises(Kill):
        subscribers_sync(vibes_list=news, client=vibes_client, progress=kill_after_first_chunk)
    assert sorted(statuses(news).values()) == ["subscribed"] * 3 + ["unsubscribed"] * 2
    sync = subscribers_sync(vibes_list=news, client=vibes_client)
    assert statuses(news) == {lead.pk: "unsubscribed" for lead in stale}
    checks = [r for r in subscriber_calls(vibes_simulator) if r["status"] == 404]
    assert len(checks) == 5  # each number checked once
    assert sync.unsubscribed == 5


def test_the_sync_needs_only_the_calls_paging_requires(news, vibes_client, vibes_simulator):
    for lead in [LeadFactory() for _ in range(7)]:
        SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
        vibes_simulator.add_subscriber("101", lead.mobile_phone, external_person_id=str(lead.pk))
    for n in range(4):
        text_keyword(vibes_simulator, f"+1555987{n:04d}")
    sync = subscribers_sync(vibes_list=news, client=vibes_client, page_size=3)
    assert len(subscriber_calls(vibes_simulator)) == sync.calls == math.ceil(11 / 3) + 1
    assert (sync.linked, sync.created, sync.changed, sync.unchanged) == (11, 4, 4, 7)


# --- Matching and ordering ------------------------------------------------------------------------


def test_everyone_with_a_subscribers_number_is_subscribed_and_linked(news, vibes_client, vibes_simulator):
    """Vibes keeps one status per number (R9)."""
    first = LeadFactory(mobile_phone="(555) 123-0001")
    second = LeadFactory(mobile_phone="+15551230001")
    text_keyword(vibes_simulator, "+15551230001")
    sync = subscribers_sync(vibes_list=news, client=vibes_client)
    rows = Subscription.objects.filter(vibes_list=news).values_list("lead_id", "status", "vibes_person_key")
    key = vibes_client.find_person("+15551230001").person_key
    assert set(rows) == {(first.pk, "subscribed", key), (second.pk, "subscribed", key)}
    assert (sync.linked, sync.created) == (2, 0)


def test_pending_leads_keep_their_chance_to_confirm(news, vibes_client):
    just = SubscriptionFactory(vibes_list=news, status="pending", pending_since=timezone.now()).lead
    expired = SubscriptionFactory(
        vibes_list=news, status="pending", pending_since=timezone.now() - timedelta(days=2)
    ).lead
    subscribers_sync(vibes_list=news, client=vibes_client)
    assert statuses(news) == {just.pk: "pending", expired.pk: "unsubscribed"}


def test_leads_never_on_the_list_get_no_subscription(news, vibes_client):
    LeadFactory()
    unsubscribed = SubscriptionFactory(vibes_list=news, status="unsubscribed").lead
    sync = subscribers_sync(vibes_list=news, client=vibes_client)
    assert statuses(news) == {unsubscribed.pk: "unsubscribed"}
    assert sync.calls == 1  # one empty page, nothing to check


def test_a_subscriber_skipped_by_paging_is_checked_and_stays_subscribed(news, vibes_client, vibes_simulator):
    """Someone who leaves while the sync pages moves the later subscribers forward, over the page
    boundary: the sync checks before it unsubscribes anyone."""
    leads = [LeadFactory() for _ in range(4)]
    for lead in leads:
        SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
        vibes_simulator.add_subscriber("101", lead.mobile_phone, external_person_id=str(lead.pk))

    def leave_after_first_page(sync, done, total):
        if sync.phase == SubscriberSync.Phase.PAGES and sync.next_page == 2:
            vibes_simulator.reply(leads[0].mobile_phone, "STOP")  # its callback is lost

    sync = subscribers_sync(
        vibes_list=news, client=vibes_client, page_size=2, progress=leave_after_first_page
    )
    # leads[2] moved onto page 1, which had been read: no page showed it, its check did.
    assert set(statuses(news).values()) == {"subscribed"}
    assert [r["status"] for r in subscriber_calls(vibes_simulator)] == [200, 200, 200, 200]
    assert (sync.subscribers, sync.unsubscribed) == (3, 0)
    # leads[0] was a subscriber when its page was read; the next sync sees it gone.
    subscribers_sync(vibes_list=news, client=vibes_client, page_size=2)
    assert statuses(news)[leads[0].pk] == "unsubscribed"


def test_a_newer_opt_out_outranks_what_the_sync_read_before_it(news, vibes_client, vibes_simulator):
    lead = LeadFactory()
    vibes_simulator.add_subscriber("101", lead.mobile_phone)
    vibes_simulator.add_subscriber("101", "+15559870001")

    def opt_out_meanwhile(sync, done, total):
        # A STOP callback, dated a minute after the page was read, arrives while the sync runs.
        subscriber_sync.subscriptions_apply(
            lead_ids=[lead.pk],
            vibes_list=news,
            status="unsubscribed",
            source=SubscriptionChange.Source.CALLBACK,
            when=timezone.now(),
        )

    Subscription.objects.create(lead=lead, vibes_list=news, status="subscribed")
    sync = subscribers_sync(vibes_list=news, client=vibes_client, page_size=1, progress=opt_out_meanwhile)
    assert statuses(news)[lead.pk] == "unsubscribed"
    assert sync.status == "done"


# --- When Vibes lists no subscribers ------------------------------------------------------------------


def test_without_pages_each_leads_number_is_searched_as_the_contract_documents(
    news, vibes_client, vibes_simulator
):
    vibes_simulator.configure(subscriber_paging=False)
    joined = LeadFactory()
    text_keyword(vibes_simulator, joined.mobile_phone)
    stale = SubscriptionFactory(vibes_list=news, status="subscribed").lead
    LeadFactory(mobile_phone=joined.mobile_phone)
    text_keyword(vibes_simulator, "+15559870001")  # no lead has it: cannot be found by number

    sync = subscribers_sync(vibes_list=news, client=vibes_client)

    assert sync.mode == "numbers"
    assert statuses(news) == {
        **{lead.pk: "subscribed" for lead in Lead.objects.filter(mobile_phone=joined.mobile_phone)},
        stale.pk: "unsubscribed",
    }
    assert not Lead.objects.filter(mobile_phone="+15559870001").exists()
    searches = [r for r in subscriber_calls(vibes_simulator) if r["status"] != 400]
    assert len(searches) == 2  # one per number
    assert "each lead's number was searched" in subscriber_sync.subscriber_sync_summary(sync)


def test_a_vibes_that_ignores_paging_is_searched_by_number_instead():
    """Vibes' own answer stands in for a Vibes account whose subscribers operation ignores paging."""
    news = VibesListFactory(vibes_id="101")
    joined = LeadFactory()
    stale = SubscriptionFactory(vibes_list=news, status="subscribed").lead
    person = {"person_key": "PK1", "mobile_phone": {"mdn": joined.mobile_phone}}

    def answer(request):
        query = parse_qs(urlsplit(request.url).query)
        if "page" in query or query.get("mdn") == [joined.mobile_phone]:
            return 200, {}, json.dumps([person] if "page" in query else person)
        return 404, {}, json.dumps({"errors": [{"message": "not subscribed", "code": 404}]})

    client = VibesClient(
        platform_url="https://vibes.test",
        connect_url="https://vibes.test",
        company_key="acme",
        username="acme",
        password="pw",
        short_code="12345",
    )
    with responses.RequestsMock() as mocked:
        mocked.add_callback("GET", re.compile(r"https://vibes\.test/.*/subscribers"), callback=answer)
        sync = subscribers_sync(vibes_list=news, client=client)
    assert (sync.mode, sync.calls) == ("numbers", 2 + 2)  # pages 1 and 2 (the same), a search per number
    assert statuses(news) == {joined.pk: "subscribed", stale.pk: "unsubscribed"}


# --- Who works on a sync -------------------------------------------------------------------------------


def test_a_list_is_synced_by_one_worker_at_a_time(news, vibes_client):
    sync = subscriber_sync_start(vibes_list=news)
    SubscriberSync.objects.filter(pk=sync.pk).update(claimed_by="elsewhere:1:x", heartbeat_at=timezone.now())
    with pytest.raises(SubscriberSyncBusy):
        subscribers_sync(vibes_list=news, client=vibes_client)


def test_a_sync_whose_worker_stopped_answering_is_taken_over(news, vibes_client):
    sync = subscriber_sync_start(vibes_list=news)
    SubscriberSync.objects.filter(pk=sync.pk).update(
        claimed_by="elsewhere:1:x", heartbeat_at=timezone.now() - sync_workers.STALE_AFTER * 2
    )
    assert subscribers_sync(vibes_list=news, client=vibes_client).status == "done"


# --- The command and the admin ---------------------------------------------------------------------


def test_the_command_reports_each_lists_sync(news, vibes_simulator, capsys):
    text_keyword(vibes_simulator, "+15559870001")
    call_command("vibes_sync", "--subscriptions", verbosity=0)
    out = capsys.readouterr().out
    assert "SMS Newsletter: Done. Subscribers read: 1; calls to Vibes: 2. Leads linked: 1, created: 1" in out
    assert "VIP Offers: Done. Subscribers read: 0" in out


def test_the_command_says_where_a_stopped_sync_continues(news, vibes_client, vibes_simulator):
    for n in range(3):
        text_keyword(vibes_simulator, f"+1555987{n:04d}")
    with pytest.raises(VibesServerError):
        subscribers_sync(
            vibes_list=news,
            client=vibes_client,
            page_size=1,
            progress=interrupt("vibes failing", vibes_simulator, 1),
        )
    with pytest.raises(CommandError) as caught:
        call_command("vibes_sync", "--subscriptions", verbosity=0)
    assert "Vibes sync failed" in str(caught.value)
    assert "SMS Newsletter: Stopped, continues on the next sync. Subscribers read: 1;" in str(caught.value)


def test_the_admin_action_syncs_the_selected_lists_subscribers_in_the_background(
    news, vibes_simulator, staff_client, settings, django_capture_on_commit_callbacks
):
    settings.RUNNER_BACKGROUND = "inline"
    text_keyword(vibes_simulator, "+15559870001")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/vibes/vibeslist/",
            {"action": "sync_from_vibes", "_selected_action": [news.pk]},
            follow=True,
        )
    page = response.content.decode()
    assert "being read from Vibes in the background" in page
    assert Lead.objects.get().mobile_phone == "+15559870001"
    assert SubscriberSync.objects.get().vibes_list == news  # only the selected list
    listing = staff_client.get("/admin/vibes/vibeslist/").content.decode()
    assert "Done. Subscribers read: 1" in listing


def test_the_admin_action_says_when_a_list_is_being_synced_already(
    news, vibes_simulator, staff_client, settings
):
    settings.RUNNER_BACKGROUND = "inline"
    sync = subscriber_sync_start(vibes_list=news)
    SubscriberSync.objects.filter(pk=sync.pk).update(claimed_by="elsewhere:1:x", heartbeat_at=timezone.now())
    response = staff_client.post(
        "/admin/vibes/vibeslist/", {"action": "sync_from_vibes", "_selected_action": [news.pk]}, follow=True
    )
    assert "are being synced already" in response.content.decode()
