"""Every model has a working admin: list, add and change pages answer 200."""

import pytest
from django.contrib import admin
from django.urls import reverse

from marketing_activities.models import QuietHours
from tests.marketing_activities.factories import (
    FlowStepFactory,
    ProgramTokenFactory,
    RunBatchFactory,
    RunResultFactory,
    SampleSendFactory,
    SmsReplyFactory,
    TestNumberFactory,
    TriggerFiringFactory,
)
from tests.smscampaigns.factories import LeadFlagChangeFactory
from tests.vibes.factories import CallbackEventFactory, SubscriptionChangeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_of_everything():
    FlowStepFactory()
    FlowStepFactory(subscribe=True)
    RunResultFactory()
    RunBatchFactory()
    SubscriptionChangeFactory()
    CallbackEventFactory()
    LeadFlagChangeFactory()
    SmsReplyFactory()
    ProgramTokenFactory()
    TestNumberFactory()
    SampleSendFactory()
    CallbackEventFactory(event_type="", outcome="unreadable", raw_body="<receipt/>")
    QuietHours().save()
    TriggerFiringFactory()  # and its activity


@pytest.mark.parametrize(
    "model",
    [
        m
        for m in admin.site._registry
        if m._meta.app_label in ("smscampaigns", "vibes", "marketing_activities")
    ],
    ids=lambda m: m._meta.label,
)
def test_admin_pages_answer(admin_client, one_of_everything, model):
    opts = model._meta
    # follow: the list of one row (the quiet hours) opens that row.
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client.get(changelist, follow=True).status_code == 200
    obj = model.objects.first()
    assert obj is not None
    assert (
        admin_client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        ).status_code
        == 200
    )
    # Records that only Vibes or a run may write have no add page (403).
    assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code in (
        200,
        403,
    )
