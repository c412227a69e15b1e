"""Subscription writes: bulk, idempotent, with history, per number for opt-outs (R9)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, SubscriptionFactory, VibesListFactory
from vibes.models import Subscription, SubscriptionChange
from vibes.subscriptions import subscriptions_apply, subscriptions_opt_out_number, subscriptions_set_status

pytestmark = pytest.mark.django_db


def test_subscribing_new_leads_creates_rows_with_dates_and_history():
    vibes_list = VibesListFactory()
    leads = LeadFactory.create_batch(3)
    when = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
    changed = subscriptions_set_status(
        lead_ids=[lead.pk for lead in leads],
        vibes_list=vibes_list,
        status="subscribed",
        source="callback",
        person_key="PK1",
        when=when,
    )
    assert changed == 3
    rows = Subscription.objects.filter(vibes_list=vibes_list)
    assert {(s.status, s.opt_in_date, s.vibes_person_key) for s in rows} == {("subscribed", when, "PK1")}
    assert list(
        SubscriptionChange.objects.order_by().values_list("old_status", "new_status", "source").distinct()
    ) == [("", "subscribed", "callback")]


def test_setting_the_same_status_twice_changes_nothing_the_second_time():
    vibes_list = VibesListFactory()
    lead = LeadFactory()
    options = {"lead_ids": [lead.pk], "vibes_list": vibes_list, "status": "pending", "source": "run"}
    assert subscriptions_set_status(**options) == 1
    first = Subscription.objects.get()
    assert subscriptions_set_status(**options) == 0
    again = Subscription.objects.get()
    assert again.pending_since == first.pending_since
    assert SubscriptionChange.objects.count() == 1


def test_unsubscribing_keeps_the_opt_in_date_and_records_reason():
    subscription = SubscriptionFactory(status="subscribed", opt_in_date=timezone.now() - timedelta(days=3))
    subscriptions_set_status(
        lead_ids=[subscription.lead_id],
        vibes_list=subscription.vibes_list,
        status="unsubscribed",
        source="callback",
        opt_out_reason="user_opt_out",
    )
    subscription.refresh_from_db()
    assert subscription.status == "unsubscribed"
    assert subscription.opt_in_date is not None
    assert subscription.opt_out_date is not None
    assert subscription.opt_out_reason == "user_opt_out"
    change = SubscriptionChange.objects.get()
    assert (change.old_status, change.new_status) == ("subscribed", "unsubscribed")


def test_pending_then_subscribed_clears_pending_since_and_keeps_the_campaign():
    campaign = AcquisitionCampaignFactory()
    lead = LeadFactory()
    common = {"lead_ids": [lead.pk], "vibes_list": campaign.vibes_list, "source": "run"}
    subscriptions_set_status(**common, status="pending", acquisition_campaign=campaign)
    subscriptions_set_status(**common, status="subscribed")
    subscription = Subscription.objects.get()
    assert subscription.pending_since is None
    assert subscription.opt_in_date is not None
    assert subscription.acquisition_campaign == campaign
    assert SubscriptionChange.objects.count() == 2


def test_unknown_lead_ids_are_skipped():
    vibes_list = VibesListFactory()
    lead = LeadFactory()
    assert (
        subscriptions_set_status(
            lead_ids=[lead.pk, 999_999], vibes_list=vibes_list, status="subscribed", source="sync"
        )
        == 1
    )


def test_a_few_queries_whatever_the_number_of_leads():
    vibes_list = VibesListFactory()
    few = [lead.pk for lead in LeadFactory.create_batch(3)]
    many = [lead.pk for lead in LeadFactory.create_batch(300)]
    with CaptureQueriesContext(connection) as small:
        subscriptions_set_status(lead_ids=few, vibes_list=vibes_list, status="subscribed", source="sync")
    with CaptureQueriesContext(connection) as large:
        subscriptions_set_status(lead_ids=many, vibes_list=vibes_list, status="subscribed", source="sync")
    assert len(large.captured_queries) <= len(small.captured_queries) + 2
    assert Subscription.objects.count() == 303


def test_opt_out_of_a_number_unsubscribes_every_lead_with_it():
    """R9: Vibes opts out numbers, so people sharing a number all leave the list."""
    vibes_list = VibesListFactory()
    first = LeadFactory(mobile_phone="+15551230001")
    second = LeadFactory(mobile_phone="+15551230001")
    other = LeadFactory(mobile_phone="+15551230002")
    SubscriptionFactory(lead=first, vibes_list=vibes_list, status="subscribed")
    SubscriptionFactory(lead=other, vibes_list=vibes_list, status="subscribed")
    changed = subscriptions_opt_out_number(
        mdn="(555) 123-0001", vibes_list=vibes_list, reason="user_opt_out", source="callback"
    )
    assert changed.changed == 2
    statuses = dict(Subscription.objects.values_list("lead_id", "status"))
    assert statuses == {first.pk: "unsubscribed", second.pk: "unsubscribed", other.pk: "subscribed"}


# --- Order by time (R9), whoever makes the change ------------------------------------------------------

T1, T2, T3 = (datetime(2026, 11, day, 9, tzinfo=UTC) for day in (1, 2, 3))


def test_a_change_older_than_the_numbers_last_change_is_kept_as_superseded():
    vibes_list = VibesListFactory()
    lead = LeadFactory(mobile_phone="+15551230001")
    subscriptions_opt_out_number(
        mdn="+15551230001", vibes_list=vibes_list, reason="user_opt_out", source="callback", when=T2
    )
    update = subscriptions_apply(
        lead_ids=[lead.pk], vibes_list=vibes_list, status="subscribed", source="run", when=T1
    )
    assert (update.changed, update.superseded) == (0, 1)
    assert Subscription.objects.get().status == "unsubscribed"
    late = SubscriptionChange.objects.get(effect="superseded")
    assert (late.old_status, late.new_status, late.source, late.occurred_at) == (
        "unsubscribed",
        "subscribed",
        "run",
        T1,
    )


def test_a_change_of_someone_sharing_the_number_counts_as_the_numbers_last_change():
    vibes_list = VibesListFactory()
    first = LeadFactory(mobile_phone="+15551230001")
    second = LeadFactory(mobile_phone="+15551230001")
    subscriptions_apply(
        lead_ids=[first.pk], vibes_list=vibes_list, status="unsubscribed", source="admin", when=T2
    )
    update = subscriptions_apply(
        lead_ids=[second.pk], vibes_list=vibes_list, status="subscribed", source="sync", when=T1
    )
    assert update.superseded == 1
    assert not Subscription.objects.filter(lead=second).exists()


def test_a_later_report_of_the_same_status_moves_its_time_on():
    """Subscribed on the 1st and again on the 3rd: an opt-out of the 2nd arriving last is older."""
    vibes_list = VibesListFactory()
    lead = LeadFactory()
    options = {"lead_ids": [lead.pk], "vibes_list": vibes_list, "source": "callback"}
    subscriptions_apply(**options, status="subscribed", when=T1)
    assert subscriptions_apply(**options, status="subscribed", when=T3).unchanged == 1
    assert subscriptions_apply(**options, status="unsubscribed", when=T2).superseded == 1
    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.status_at, subscription.opt_in_date) == ("subscribed", T3, T1)


def test_no_change_is_later_than_its_arrival():
    vibes_list = VibesListFactory()
    lead = LeadFactory()
    before = timezone.now().replace(microsecond=0)
    subscriptions_apply(
        lead_ids=[lead.pk],
        vibes_list=vibes_list,
        status="subscribed",
        source="callback",
        when=T1.replace(year=2099),
    )
    change = SubscriptionChange.objects.get()
    assert before <= change.occurred_at <= change.recorded_at


def test_every_change_records_its_source_times_and_who_made_it(admin_user):
    vibes_list = VibesListFactory()
    lead = LeadFactory()
    subscriptions_apply(
        lead_ids=[lead.pk],
        vibes_list=vibes_list,
        status="unsubscribed",
        source="admin",
        user=admin_user,
        when=T1,
    )
    change = SubscriptionChange.objects.get()
    assert (change.source, change.user, change.vibes_list, change.effect, change.occurred_at) == (
        "admin",
        admin_user,
        vibes_list,
        "applied",
        T1,
    )
    assert change.recorded_at > change.occurred_at
