"""R5 needs an acquisition campaign Vibes takes participants for: only active
ones are offered, a step whose campaign ended shows why, and its campaign does
not run. The statuses come from the simulator over HTTP through `vibes_sync`."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketing_activities.models import CampaignRun
from marketing_activities.runner import CampaignCannotRun, run_create
from tests.marketing_activities.factories import FlowStepFactory
from tests.marketing_activities.ui_helpers import HTMX, url
from vibes.conf import get_client
from vibes.models import AcquisitionCampaign, VibesList
from vibes.sync import vibes_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(vibes_simulator):
    """List 101 in Vibes with one campaign of each status the contract names, one
    with a word it does not, and one active in name whose end date has passed."""
    vibes_simulator.set_campaign("AC-PAST", list_id="101", description="Summer sign-up", status="past")
    vibes_simulator.set_campaign("AC-SOON", list_id="101", description="Winter sign-up", status="scheduled")
    vibes_simulator.set_campaign("AC-GONE", list_id="101", description="Old keyword", status="deleted")
    vibes_simulator.set_campaign("AC-ODD", list_id="101", description="Paused sign-up", status="paused")
    vibes_simulator.set_campaign(
        "AC-OVER", list_id="101", description="Spring sign-up", status="active", end_date="2026-03-31"
    )
    vibes_sync(client=get_client())
    return {c.vibes_id: c for c in AcquisitionCampaign.objects.all()}


def subscribe_step(campaign):
    return FlowStepFactory(
        subscribe=True,
        position=0,
        vibes_list=VibesList.objects.get(vibes_id="101"),
        acquisition_campaign=campaign,
    )


def test_sync_stores_vibes_status_and_end_date(synced):
    assert {vibes_id: c.status for vibes_id, c in synced.items()} == {
        "AC-NEWS-WEB": "active",
        "AC-NEWS-STORE": "active",
        "AC-VIP": "active",
        "AC-PAST": "past",
        "AC-SOON": "scheduled",
        "AC-GONE": "deleted",
        "AC-ODD": "paused",
        "AC-OVER": "active",
    }
    # A bare date ends at the close of that day.
    assert synced["AC-OVER"].ends_at.isoformat() == "2026-04-01T00:00:00+00:00"
    assert synced["AC-NEWS-WEB"].ends_at is None


def test_only_running_campaigns_are_offered(synced):
    assert set(AcquisitionCampaign.objects.running().values_list("vibes_id", flat=True)) == {
        "AC-NEWS-WEB",
        "AC-NEWS-STORE",
        "AC-VIP",
    }


def test_the_flow_tab_offers_only_the_active_campaigns_of_the_list(staff_client, synced):
    step = subscribe_step(None)
    html = staff_client.get(url("campaign_flow", step.campaign.pk), headers=HTMX).content.decode()
    card = html[html.index(f'id="flow-step-{step.pk}"') :].split("</li>")[0]
    assert "Newsletter web sign-up" in card and "Newsletter in-store keyword" in card
    for name in ("Summer sign-up", "Winter sign-up", "Old keyword", "Paused sign-up", "Spring sign-up"):
        assert name not in card


@pytest.mark.parametrize(
    ("vibes_id", "reason"),
    [
        ("AC-PAST", "The acquisition campaign “Summer sign-up” has ended in Vibes; choose an active one."),
        ("AC-OVER", "The acquisition campaign “Spring sign-up” ended in Vibes on "),
        ("AC-SOON", "The acquisition campaign “Winter sign-up” has not started in Vibes yet;"),
        (
            "AC-GONE",
            "The acquisition campaign “Old keyword” no longer exists in Vibes; choose an active one.",
        ),
        ("AC-ODD", "Vibes gives the acquisition campaign “Paused sign-up” the status “paused”, and only"),
    ],
)
def test_a_step_whose_campaign_is_not_active_shows_why_at_the_step(staff_client, synced, vibes_id, reason):
    step = subscribe_step(synced[vibes_id])
    html = staff_client.get(url("campaign_flow", step.campaign.pk)).content.decode()
    card = html[html.index(f'id="flow-step-{step.pk}"') :].split("</li>")[0]
    error = card[card.index(f'id="step-{step.pk}-acquisition-error"') :].split("</p>")[0]
    assert reason in error
    # The campaign chosen earlier stays visible as the step's value.
    assert f"selected>{synced[vibes_id].name}</option>" in card


def test_a_step_whose_campaign_ended_after_the_sync_is_refused_by_its_end_date(synced):
    campaign = synced["AC-NEWS-WEB"]
    step = subscribe_step(campaign)
    assert step.problems() == {}
    AcquisitionCampaign.objects.filter(pk=campaign.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    step.acquisition_campaign.refresh_from_db()
    assert "ended in Vibes on" in step.problems()["acquisition_campaign"]
    assert not AcquisitionCampaign.objects.running().filter(pk=campaign.pk).exists()


def test_a_run_is_refused_with_the_steps_reason(synced):
    step = subscribe_step(synced["AC-PAST"])
    with pytest.raises(CampaignCannotRun) as error:
        run_create(campaign=step.campaign, trigger=CampaignRun.Trigger.COMMAND)
    assert error.value.problems == [
        "Step 1 (Subscribe to Vibes List): The acquisition campaign “Summer sign-up” has ended in "
        "Vibes; choose an active one."
    ]
    assert not CampaignRun.objects.exists()


def test_run_campaign_refuses_and_nothing_reaches_vibes(synced, vibes_simulator):
    step = subscribe_step(synced["AC-SOON"])
    before = len(vibes_simulator.requests_log())
    with pytest.raises(CommandError, match="has not started in Vibes yet") as error:
        call_command("run_campaign", step.campaign.pk)
    assert error.value.returncode == 2
    assert len(vibes_simulator.requests_log()) == before


def test_the_run_button_shows_the_reason(staff_client, synced):
    step = subscribe_step(synced["AC-ODD"])
    response = staff_client.post(
        url("campaign_run_now", step.campaign.pk), headers={**HTMX, "HX-Target": "run-now"}
    )
    assert "the status “paused”" in response.content.decode()
    assert not step.campaign.runs.exists()


def test_a_campaign_active_again_in_vibes_runs_after_the_next_sync(synced, vibes_simulator):
    step = subscribe_step(synced["AC-SOON"])
    vibes_simulator.set_campaign("AC-SOON", status="active")
    vibes_sync(client=get_client())
    step.acquisition_campaign.refresh_from_db()
    assert step.campaign.problems() == []
