"""The admin lists that grow with people and traffic: a page costs the same
number of queries whatever the rows, is counted without reading every row,
and offers no facet counts (smscampaigns/admin_lists.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketing_activities.models import RunResult, TriggerFiring
from smscampaigns import admin_lists
from smscampaigns.models import Activity, Lead, LeadFlagChange
from tests.marketing_activities.factories import (
    RunResultFactory,
    RunStepFactory,
    SmartCampaignFactory,
    TriggerFiringFactory,
)
from tests.smscampaigns.factories import (
    ActivityFactory,
    LeadFactory,
    LeadFlagChangeFactory,
    LeadImportFactory,
)
from tests.vibes.factories import (
    CallbackEventFactory,
    InboundMessageFactory,
    SubscriptionChangeFactory,
    SubscriptionFactory,
    VibesListFactory,
)
from vibes.models import (
    CallbackEvent,
    InboundMessage,
    Subscription,
    SubscriptionChange,
    UnreadableCallback,
)

pytestmark = pytest.mark.django_db


def _leads(count):
    return LeadFactory.create_batch(count)


def _flag_changes(count):
    LeadFlagChangeFactory.create_batch(count)


def _subscriptions(count):
    vibes_list = VibesListFactory()
    SubscriptionFactory.create_batch(count, vibes_list=vibes_list)


def _subscription_changes(count):
    vibes_list = VibesListFactory()
    SubscriptionChangeFactory.create_batch(count, subscription__vibes_list=vibes_list)


def _callbacks(count):
    CallbackEventFactory.create_batch(count, mdn="+15551230001")


def _unreadable_callbacks(count):
    CallbackEventFactory.create_batch(count, event_type="", outcome="unreadable", raw_body="<receipt/>")


def _inbound_messages(count):
    for lead in LeadFactory.create_batch(count):
        InboundMessageFactory(mdn=lead.mobile_phone, leads=[lead])


def _run_results(count):
    step = RunStepFactory()
    RunResultFactory.create_batch(count, run_step=step, duplicate_of=LeadFactory(), blocked_by=LeadFactory())


def _activities(count):
    ActivityFactory.create_batch(count)


def _trigger_firings(count):
    TriggerFiringFactory.create_batch(count, campaign=SmartCampaignFactory())


LARGE_LISTS = {
    Lead: _leads,
    LeadFlagChange: _flag_changes,
    Subscription: _subscriptions,
    SubscriptionChange: _subscription_changes,
    CallbackEvent: _callbacks,
    UnreadableCallback: _unreadable_callbacks,
    InboundMessage: _inbound_messages,
    RunResult: _run_results,
    Activity: _activities,
    TriggerFiring: _trigger_firings,
}


def changelist(model, query=""):
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{query}" if query else url


def queries_of(client, url) -> int:
    client.get(url)  # once before, for what Django caches (content types)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize("model", LARGE_LISTS, ids=lambda model: model._meta.label)
def test_a_large_list_takes_as_many_queries_for_many_rows_as_for_few(admin_client, model):
    LARGE_LISTS[model](3)
    few = queries_of(admin_client, changelist(model))
    LARGE_LISTS[model](40)
    assert queries_of(admin_client, changelist(model)) == few


@pytest.mark.parametrize("model", LARGE_LISTS, ids=lambda model: model._meta.label)
def test_a_large_lists_sidebar_reads_no_columns_values_from_the_whole_table(admin_client, model):
    """Only the unreadable callbacks' event types are read with a DISTINCT, over
    the few unreadable ones (their partial index)."""
    LARGE_LISTS[model](3)
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(changelist(model)).status_code == 200
    distinct = [q["sql"] for q in queries if "DISTINCT" in q["sql"].upper()]
    assert not [sql for sql in distinct if "WHERE" not in sql.upper()]


@pytest.mark.parametrize("model", LARGE_LISTS, ids=lambda model: model._meta.label)
def test_a_large_list_counts_no_facets(admin_client, model):
    LARGE_LISTS[model](2)
    response = admin_client.get(changelist(model, "_facets=True"))
    assert response.status_code == 200
    assert response.context["cl"].add_facets is False


@pytest.mark.parametrize("model", LARGE_LISTS, ids=lambda model: model._meta.label)
def test_a_large_list_says_what_its_search_box_takes(admin_client, model):
    response = admin_client.get(changelist(model))
    assert response.context["cl"].search_help_text


def test_a_list_beyond_the_counted_rows_says_more_than(admin_client, monkeypatch):
    monkeypatch.setattr(admin_lists, "COUNTED_UP_TO", 5)
    LeadFactory.create_batch(8, country="SE")
    response = admin_client.get(changelist(Lead, "country=SE"))
    assert response.context["cl"].paginator.count_shown == "more than 5"
    assert "more than 5 leads" in response.text


def test_a_list_within_the_counted_rows_is_counted_exactly(admin_client, monkeypatch):
    monkeypatch.setattr(admin_lists, "COUNTED_UP_TO", 5)
    LeadFactory.create_batch(4, country="SE")
    LeadFactory.create_batch(3, country="US")
    response = admin_client.get(changelist(Lead, "country=SE"))
    assert response.context["cl"].paginator.count_shown == "4"
    assert response.context["cl"].result_count == 4


def test_a_search_the_planner_expects_ten_times_past_the_counted_rows_is_not_counted(
    admin_client, monkeypatch
):
    """At ten million people a common name's 200,000 were read through the
    trigram index to count 10,001 of them: PostgreSQL's estimate says it at once."""
    monkeypatch.setattr(admin_lists, "COUNTED_UP_TO", 2)
    LeadFactory.create_batch(30, last_name="Lindqvist")
    LeadFactory.create_batch(30, last_name="Berg")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE smscampaigns_lead")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(changelist(Lead, "q=Lindqvist"))
    assert response.context["cl"].paginator.count_shown == "more than 2"
    counted = [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()]
    if connection.vendor == "postgresql":
        assert not counted
    else:
        assert counted  # SQLite has no estimates: it counts up to the limit


def test_a_whole_table_is_counted_by_the_databases_estimate(admin_client, monkeypatch):
    monkeypatch.setattr(admin_lists, "COUNTED_UP_TO", 5)
    LeadFactory.create_batch(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    assert admin_lists.table_estimate(Lead) == 12
    response = admin_client.get(changelist(Lead))
    assert response.context["cl"].paginator.count_shown == "about 12"
    assert "about 12 leads" in response.text


def test_a_table_never_analysed_is_counted_up_to_the_limit(admin_client, monkeypatch):
    monkeypatch.setattr(admin_lists, "COUNTED_UP_TO", 5)
    monkeypatch.setattr(admin_lists, "table_estimate", lambda model, using="default": None)
    LeadFactory.create_batch(7)
    response = admin_client.get(changelist(Lead))
    assert response.context["cl"].paginator.count_shown == "more than 5"


def test_the_pages_stop_where_the_count_does(admin_client, monkeypatch):
    monkeypatch.setattr(admin_lists, "COUNTED_UP_TO", 5)
    monkeypatch.setattr(admin_lists, "table_estimate", lambda model, using="default": 1_000_000)
    LeadFactory.create_batch(8)
    response = admin_client.get(changelist(Lead))
    paginator = response.context["cl"].paginator
    assert paginator.count_shown == "about 1,000,000"
    # Six rows at 50 a page: one page, never an OFFSET of a million.
    assert paginator.num_pages == 1


def test_the_sidebar_lists_each_country_once_in_order(admin_client):
    for country in ("US", "SE", "US", "DE", "", "SE"):
        LeadFactory(country=country)
    response = admin_client.get(changelist(Lead))
    countries = next(f for f in response.context["cl"].filter_specs if f.field_path == "country")
    assert list(countries.lookup_choices) == ["", "DE", "SE", "US"]


def test_a_list_that_fits_a_page_is_read_with_a_limit(admin_client):
    """Without one, SQLite reads a searched list by walking the whole table in id order."""
    LeadFactory.create_batch(3, last_name="Rossi")
    response = admin_client.get(changelist(Lead, "q=ross"))
    assert response.context["cl"].result_list.query.is_sliced
    assert len(response.context["cl"].result_list) == 3


def test_a_change_can_be_filtered_by_the_status_it_led_to(admin_client):
    subscribed = SubscriptionChangeFactory(new_status="subscribed")
    SubscriptionChangeFactory(new_status="unsubscribed")
    response = admin_client.get(changelist(SubscriptionChange, "new_status=subscribed"))
    assert list(response.context["cl"].result_list) == [subscribed]


def test_the_sidebar_filter_picks_its_value(admin_client):
    sweden = LeadFactory(country="SE")
    LeadFactory(country="US")
    response = admin_client.get(changelist(Lead, "country=SE"))
    assert list(response.context["cl"].result_list) == [sweden]


def test_the_sidebar_lists_at_most_the_first_values(monkeypatch):
    for country in ("US", "SE", "DE", "NL"):
        LeadFactory(country=country)
    assert admin_lists.distinct_values(Lead, "country", limit=2) == ["DE", "NL"]


def _activity(lead, count):
    step = RunStepFactory()
    RunResultFactory.create_batch(count, run_step=step, lead=lead)
    SubscriptionChangeFactory.create_batch(count, subscription__lead=lead, lead=lead)
    CallbackEventFactory.create_batch(count, mdn=lead.mobile_phone)
    LeadFlagChangeFactory.create_batch(count, lead=lead)
    InboundMessageFactory.create_batch(count, mdn=lead.mobile_phone, leads=[lead])


def test_a_leads_page_takes_as_many_queries_for_much_activity_as_for_little(admin_client):
    lead = LeadFactory()
    url = reverse("admin:smscampaigns_lead_change", args=[lead.pk])
    _activity(lead, 2)
    little = queries_of(admin_client, url)
    _activity(lead, 15)
    assert queries_of(admin_client, url) == little


def test_an_imports_first_problems_are_read_in_line_order_from_their_index():
    lead_import = LeadImportFactory()
    queryset = lead_import.problems.all()[:1001]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            assert "TEMP B-TREE" not in plan, plan
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Sort" not in plan, plan
    assert "lead_import_problem_lines" in plan, plan
