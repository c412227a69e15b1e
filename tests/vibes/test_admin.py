"""The Vibes admin: an administrator's subscription change goes through the history like any other."""

import pytest
from django.urls import reverse

from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory, VibesListFactory
from vibes.models import Subscription, SubscriptionChange

pytestmark = pytest.mark.django_db


def form(subscription_or_lead, vibes_list, status):
    lead = getattr(subscription_or_lead, "lead", subscription_or_lead)
    return {
        "lead": lead.pk,
        "vibes_list": vibes_list.pk,
        "status": status,
        "acquisition_campaign": "",
        "vibes_person_key": "PK9",
        "opt_out_reason": "",
    }


def test_an_administrators_status_change_is_recorded_with_who_and_when(admin_client, admin_user):
    subscription = SubscriptionFactory(status="subscribed")
    url = reverse("admin:vibes_subscription_change", args=[subscription.pk])
    response = admin_client.post(url, form(subscription, subscription.vibes_list, "unsubscribed"))
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.status, subscription.vibes_person_key) == ("unsubscribed", "PK9")
    assert subscription.opt_out_date == subscription.status_at
    change = SubscriptionChange.objects.get()
    assert (change.old_status, change.new_status, change.source, change.user) == (
        "subscribed",
        "unsubscribed",
        "admin",
        admin_user,
    )


def test_saving_other_fields_leaves_the_history_alone(admin_client):
    subscription = SubscriptionFactory(status="subscribed")
    url = reverse("admin:vibes_subscription_change", args=[subscription.pk])
    admin_client.post(url, form(subscription, subscription.vibes_list, "subscribed"))
    subscription.refresh_from_db()
    assert subscription.vibes_person_key == "PK9"
    assert not SubscriptionChange.objects.exists()


def test_a_subscription_added_in_the_admin_is_in_the_history(admin_client, admin_user):
    lead, vibes_list = LeadFactory(), VibesListFactory()
    response = admin_client.post(reverse("admin:vibes_subscription_add"), form(lead, vibes_list, "pending"))
    assert response.status_code == 302
    subscription = Subscription.objects.get(lead=lead, vibes_list=vibes_list)
    assert (subscription.status, subscription.vibes_person_key) == ("pending", "PK9")
    assert SubscriptionChange.objects.get().user == admin_user


def test_subscriptions_cannot_be_deleted_in_the_admin(admin_client):
    """Deleting one would erase its number's opt-out, which late events are compared with."""
    subscription = SubscriptionFactory()
    url = reverse("admin:vibes_subscription_delete", args=[subscription.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Subscription.objects.filter(pk=subscription.pk).exists()


def test_the_history_cannot_be_written_by_hand(admin_client):
    assert admin_client.get(reverse("admin:vibes_subscriptionchange_add")).status_code == 403
