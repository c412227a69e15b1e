import datetime

import factory
from factory.django import DjangoModelFactory

from tests.smscampaigns.factories import LeadFactory
from vibes.models import AcquisitionCampaign, CallbackEvent, Subscription, SubscriptionChange, VibesList


class VibesListFactory(DjangoModelFactory):
    class Meta:
        model = VibesList
        django_get_or_create = ("vibes_id",)

    vibes_id = factory.Sequence(lambda n: str(500 + n))
    name = factory.Sequence(lambda n: f"Vibes list {n}")


class AcquisitionCampaignFactory(DjangoModelFactory):
    class Meta:
        model = AcquisitionCampaign
        django_get_or_create = ("vibes_id",)

    vibes_id = factory.Sequence(lambda n: f"AC-{n}")
    name = factory.Sequence(lambda n: f"Acquisition campaign {n}")
    vibes_list = factory.SubFactory(VibesListFactory)
    status = "active"


class SubscriptionFactory(DjangoModelFactory):
    class Meta:
        model = Subscription

    lead = factory.SubFactory(LeadFactory)
    vibes_list = factory.SubFactory(VibesListFactory)
    status = Subscription.Status.SUBSCRIBED
    # Long before the events the tests post, unless a test says otherwise.
    status_at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class SubscriptionChangeFactory(DjangoModelFactory):
    class Meta:
        model = SubscriptionChange

    subscription = factory.SubFactory(SubscriptionFactory)
    lead = factory.SelfAttribute("subscription.lead")
    vibes_list = factory.SelfAttribute("subscription.vibes_list")
    old_status = ""
    new_status = Subscription.Status.SUBSCRIBED
    source = SubscriptionChange.Source.RUN


class CallbackEventFactory(DjangoModelFactory):
    class Meta:
        model = CallbackEvent

    event_type = "subscription_added"
    dedupe_key = factory.Sequence(lambda n: f"{n:064d}")
    payload = factory.LazyFunction(dict)
    outcome = CallbackEvent.Outcome.APPLIED
