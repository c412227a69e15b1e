"""A person's activity log (marketing_activities/activity.py) and its admin page."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketing_activities.activity import KINDS, lead_activity_page
from marketing_activities.models import FlowStep, LinkClick, Outcome, RunResult, SentSms, TrackedLink
from smscampaigns.models import Activity, LeadFlagChange
from tests.marketing_activities.factories import (
    CampaignRunFactory,
    RunResultFactory,
    RunStepFactory,
    SmartCampaignFactory,
    SmsReplyFactory,
)
from tests.smscampaigns.factories import ActivityFactory, LeadFactory, LeadFlagChangeFactory
from tests.vibes.factories import InboundMessageFactory, SubscriptionChangeFactory, SubscriptionFactory
from vibes.models import SubscriptionChange

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


def at(minutes: int) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


def send_step(campaign=None):
    run = CampaignRunFactory(campaign=campaign) if campaign else CampaignRunFactory()
    return RunStepFactory(run=run, action=FlowStep.Action.SEND_SMS, planned_at=T0)


def sent(lead, minutes, *, step=None, outcome=Outcome.SENT, text="Hello"):
    result = RunResultFactory(
        lead=lead,
        run_step=step or send_step(),
        outcome=outcome,
        called_at=at(minutes),
        updated_at=at(minutes),
    )
    SentSms.objects.create(result=result, run_step=result.run_step, text=text)
    return result


def receipt(result, minutes, *, delivered=True, status=""):
    result.outcome = Outcome.DELIVERED if delivered else Outcome.DELIVERY_FAILED
    result.delivery_status = status or ("delivered" if delivered else "failed")
    result.updated_at = at(minutes)
    result.save()


def click(result, minutes):
    link = TrackedLink.objects.create(
        code=f"c{result.pk:09d}",
        run_step=result.run_step,
        result=result,
        lead=result.lead,
        position=0,
        url="https://shop.example/sale",
    )
    return LinkClick.objects.create(
        link=link, lead=result.lead, run_step=result.run_step, result=result, clicked_at=at(minutes)
    )


@pytest.fixture
def history(db):
    """One person with one record of each kind, a minute apart, oldest first;
    and another person with their own rows at the same times."""
    lead = LeadFactory(mobile_phone="+15551230001")
    other = LeadFactory(mobile_phone="+15551230002")
    campaign = SmartCampaignFactory(name="Spring sale")
    for person in (lead, other):
        ActivityFactory(lead=person, kind=Activity.Kind.PERSON_CREATED, occurred_at=at(0), source="import")
        SubscriptionChangeFactory(
            subscription=SubscriptionFactory(lead=person), recorded_at=at(1), occurred_at=at(1)
        )
        first = sent(person, 2, step=send_step(campaign))
        receipt(first, 3)
        second = sent(person, 4, step=send_step(campaign))
        receipt(second, 5, delivered=False, status="undeliverable")
        SmsReplyFactory(
            result=first,
            message=InboundMessageFactory(mdn=person.mobile_phone, text="YES please", occurred_at=at(6)),
        )
        click(first, 7)
        LeadFlagChangeFactory(lead=person, created_at=at(8))
    return lead, campaign


def test_the_log_shows_each_kind_with_its_source_newest_first(history):
    lead, _campaign = history
    entries = lead_activity_page(lead=lead).entries
    assert [(entry.kind, entry.source) for entry in entries] == [
        ("block", "CSV import"),
        ("clicked", "tracked link"),
        ("replied", "Vibes inbound SMS"),
        ("failed", "Vibes delivery receipt"),
        ("sent", "campaign run"),
        ("delivered", "Vibes delivery receipt"),
        ("sent", "campaign run"),
        ("subscription", "campaign run"),
        ("activity", "import"),
    ]
    assert [entry.when for entry in entries] == [at(m) for m in (8, 7, 6, 5, 4, 3, 2, 1, 0)]
    failed = entries[3]
    assert "hard bounce" in failed.text and "undeliverable" in failed.text
    assert "Spring sale" in entries[4].text and "“Hello”" in entries[4].text
    assert "“YES please”" in entries[2].text and "in reply to Spring sale" in entries[2].text


def test_another_persons_rows_are_never_shown(history):
    lead, _campaign = history
    entries = lead_activity_page(lead=lead).entries
    assert "+15551230002" not in " ".join(entry.text for entry in entries)
    assert len(entries) == 9


def test_the_log_is_filtered_by_kind(history):
    lead, _campaign = history
    entries = lead_activity_page(lead=lead, kinds=["failed", "replied"]).entries
    assert [entry.kind for entry in entries] == ["replied", "failed"]


def test_a_kind_the_log_does_not_know_is_ignored(history):
    lead, _campaign = history
    assert len(lead_activity_page(lead=lead, kinds=["no-such-kind"]).entries) == 9


def test_the_log_is_filtered_by_campaign(history):
    lead, campaign = history
    sent(lead, 9, step=send_step(SmartCampaignFactory(name="Another campaign")))
    entries = lead_activity_page(lead=lead, campaign=campaign.pk).entries
    # What no campaign did (the block, the subscription change, the creation) is not the campaign's.
    assert [entry.kind for entry in entries] == ["clicked", "replied", "failed", "sent", "delivered", "sent"]
    assert all("Another campaign" not in entry.text for entry in entries)


def test_older_pages_continue_below_the_last_entry_without_gaps_or_repeats(db):
    lead = LeadFactory()
    step = send_step()
    expected = []
    # 70 SMS, 60 of them delivered, 30 block changes: many at the same minute as another kind.
    for n in range(70):
        result = sent(lead, n, step=step)
        expected.append(("sent", result.pk))
        if n < 60:
            receipt(result, n + 1)
            expected.append(("delivered", result.pk))
    for n in range(30):
        change = LeadFlagChangeFactory(lead=lead, created_at=at(n * 2))
        expected.append(("block", change.pk))
    pages, older = [], ""
    while True:
        page = lead_activity_page(lead=lead, older=older, page_size=50)
        pages.append(page.entries)
        older = page.older
        if not older:
            break
    assert [len(entries) for entries in pages] == [50, 50, 50, 10]
    shown = [entry for entries in pages for entry in entries]
    assert [entry.key for entry in shown] == sorted((entry.key for entry in shown), reverse=True)
    assert sorted((entry.kind, entry.key[2]) for entry in shown) == sorted(expected)


def test_a_page_of_a_long_history_costs_as_many_queries_as_a_short_one(history):
    lead, campaign = history

    def queries(**filters):
        with CaptureQueriesContext(connection) as captured:
            lead_activity_page(lead=lead, **filters)
        return len(captured)

    short = queries()
    short_campaign = queries(campaign=campaign.pk)
    for n in range(120):
        result = sent(lead, 100 + n, step=send_step(campaign))
        receipt(result, 101 + n)
        click(result, 102 + n)
        LeadFlagChangeFactory(lead=lead, created_at=at(100 + n))
        ActivityFactory(lead=lead, kind=Activity.Kind.DATA_VALUE_CHANGED, occurred_at=at(100 + n))
    assert queries() == short
    assert queries(campaign=campaign.pk) == short_campaign
    assert short <= 9  # one per source, and the campaigns a request names


def test_each_source_reads_its_rows_through_an_index_on_lead_and_time(history):
    """No source sorts the person's rows nor reads the table: each walks its index from the cursor down."""
    lead, _campaign = history
    first = lead_activity_page(lead=lead, page_size=3)
    statements = []

    def keep(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        lead_activity_page(lead=lead, older=first.older, page_size=3)
    indexes = {
        "run_result_lead_called",
        "run_result_lead_receipt",
        "run_result_lead_blocked",
        "link_click_lead_time",
        "subscription_change_lead_time",
        "flag_change_lead_time",
        "activity_lead_record",
    }
    used = set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner's statistics of this test's rows, not of what earlier tests left
            # (autovacuum analyses tables between tests): with them it may pick another index.
            for model in (RunResult, LinkClick, SubscriptionChange, LeadFlagChange, Activity):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        for sql, params in statements:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("EXPLAIN " + sql, params)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = "\n".join(str(row[-1] if connection.vendor == "sqlite" else row[0]) for row in cursor)
            used |= {index for index in indexes if index in plan}
            # No sort: the index gives the order. The skips for another person's block
            # (few) have no call time and are sorted by their step's.
            if connection.vendor == "sqlite" and any(
                index in plan for index in indexes - {"run_result_lead_blocked"}
            ):
                assert "TEMP B-TREE" not in plan, plan
    if connection.vendor == "sqlite":
        assert used == indexes
    else:
        # PostgreSQL's choice among the indexes follows statistics earlier tests leave behind
        # (seen in the whole suite): each read goes through one of the log's indexes.
        assert used and used <= indexes


def test_a_number_blocked_by_another_person_shows_as_not_sent_naming_them(db):
    eve = LeadFactory(first_name="Eve", last_name="Stone")
    lead = LeadFactory()
    RunResultFactory(
        lead=lead, run_step=send_step(), outcome=Outcome.SKIPPED_NUMBER_SUSPENDED, blocked_by=eve
    )
    (entry,) = lead_activity_page(lead=lead).entries
    assert entry.kind == "skipped"
    assert "skipped: number shared with a marketing-suspended person" in entry.text
    assert "because of Eve Stone" in entry.text


# --- The admin's page -------------------------------------------------------------------


def log_url(lead, **query):
    from urllib.parse import urlencode

    url = reverse("admin:smscampaigns_lead_activity", args=[lead.pk])
    return f"{url}?{urlencode(query, doseq=True)}" if query else url


def test_the_leads_page_shows_the_first_page_and_links_to_the_whole_log(admin_client, history):
    lead, _campaign = history
    content = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[lead.pk])).content.decode()
    assert "“YES please”" in content
    assert log_url(lead) in content


def test_the_log_page_is_a_whole_page_and_its_htmx_partial_the_log_alone(admin_client, history):
    lead, _campaign = history
    page = admin_client.get(log_url(lead, kind="replied")).content.decode()
    assert "<html" in page and 'id="activity-filters"' in page and "“YES please”" in page
    partial = admin_client.get(log_url(lead, kind="replied"), headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and 'id="activity-filters"' not in partial
    assert partial.strip().startswith('<section id="activity-log"') and "“YES please”" in partial
    assert "undeliverable" not in partial


def test_the_older_link_keeps_the_filters(admin_client, db):
    lead = LeadFactory()
    step = send_step()
    for n in range(55):
        sent(lead, n, step=step, text=f"SMS number {n}")
    LeadFlagChangeFactory(lead=lead, created_at=at(100))
    first = admin_client.get(log_url(lead, kind="sent")).content.decode()
    assert "SMS number 54" in first and "SMS number 4”" not in first and "CSV import" not in first
    older = lead_activity_page(lead=lead, kinds=["sent"]).older
    assert f"kind=sent&amp;older={older.replace('+', '%2B').replace(':', '%3A')}" in first
    second = admin_client.get(log_url(lead, kind="sent", older=older)).content.decode()
    assert "SMS number 4”" in second and "SMS number 5”" not in second
    assert 'class="activity-older"' not in second and 'class="activity-newest"' in second


def test_a_page_link_that_cannot_be_read_shows_the_newest_with_a_message(admin_client, history):
    lead, _campaign = history
    response = admin_client.get(log_url(lead, older="yesterday~x"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "That page of the activity log could not be read" in content and "“YES please”" in content


def test_a_marketer_without_the_lead_view_permission_is_refused(client, django_user_model, history):
    lead, _campaign = history
    user = django_user_model.objects.create_user("runner", password="pw-runner-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_smartcampaign"))
    client.force_login(user)
    assert client.get(log_url(lead)).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_lead"))
    user = django_user_model.objects.get(pk=user.pk)  # permissions are cached on the instance
    client.force_login(user)
    assert client.get(log_url(lead)).status_code == 200


def test_every_kind_can_be_chosen_on_the_page(admin_client, history):
    lead, _campaign = history
    content = admin_client.get(log_url(lead)).content.decode()
    for kind in KINDS:
        assert f'name="kind" value="{kind}"' in content


def test_a_lead_that_does_not_exist_is_not_found(admin_client, db):
    assert admin_client.get(reverse("admin:smscampaigns_lead_activity", args=[999999])).status_code in (
        302,
        404,
    )


def test_the_flag_change_history_keeps_its_source(history):
    lead, _campaign = history
    (entry,) = lead_activity_page(lead=lead, kinds=["block"]).entries
    assert entry.text == LeadFlagChange.objects.get(lead=lead).describe()
