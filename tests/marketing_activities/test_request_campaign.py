"""Campaign is Requested: the flow step "Request Campaign" chains campaigns, and
`manage.py request_campaign` requests one for people."""

import pytest
from django.core.management import CommandError, call_command

from marketing_activities import services
from marketing_activities.models import CampaignRun, FlowStep, Outcome, TriggerFiring
from marketing_activities.runner import run_create, run_execute
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.models import Activity
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory
from tests.marketing_activities.test_sms_triggers import follow_up_campaign
from tests.marketing_activities.test_triggers import NUMBER
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.simulated import make_client

pytestmark = pytest.mark.django_db

REQUESTED = {"trigger": "campaign_requested"}


def requesting(campaign, *, rule=None):
    """A batch campaign whose flow is one step: Request Campaign `campaign`."""
    requester = SmartCampaignFactory(
        qualification_rule="every_time",
        smart_list__definition={
            "logic": "all",
            "rules": [rule or {"field": "country", "op": "is", "value": "US"}],
        },
    )
    FlowStepFactory(
        campaign=requester,
        action=FlowStep.Action.REQUEST_CAMPAIGN,
        vibes_list=None,
        requested_campaign=campaign,
    )
    return requester


def test_a_request_campaign_step_runs_the_requested_campaign_for_each_person(news, vibes_simulator):
    welcome = follow_up_campaign(news, REQUESTED)
    people = [
        subscribed(news, mobile_phone=NUMBER, country="US"),
        subscribed(news, mobile_phone=NUMBER, country="US"),
    ]
    requester = requesting(welcome)
    run = run_execute(
        run=run_create(campaign=requester, trigger=CampaignRun.Trigger.COMMAND),
        client=make_client(vibes_simulator.url),
    )
    # Both are requested, though they share a number: the requested campaign's run texts the number once (R3).
    assert run.steps.get().counts == {"requested": 2}
    triggers_dispatch()

    assert sorted(TriggerFiring.objects.filter(campaign=welcome).values_list("lead_id", flat=True)) == sorted(
        person.pk for person in people
    )
    assert len(vibes_simulator.messages()) == 1
    assert Activity.objects.filter(kind="campaign_requested").count() == 2


def test_a_request_fires_only_the_campaign_requested(news, vibes_simulator):
    welcome = follow_up_campaign(news, REQUESTED)
    other = follow_up_campaign(news, REQUESTED)
    lead = LeadFactory()
    call_command("request_campaign", str(welcome.pk), str(lead.pk))
    triggers_dispatch()
    assert TriggerFiring.objects.filter(campaign=welcome).exists()
    assert not TriggerFiring.objects.filter(campaign=other).exists()


def test_the_source_constraint_tells_a_flow_step_from_the_command(news, vibes_simulator):
    from_flow = follow_up_campaign(news, {**REQUESTED, "source": "flow"})
    lead = LeadFactory()
    call_command("request_campaign", str(from_flow.pk), str(lead.pk))
    triggers_dispatch()
    assert Activity.objects.get().attributes["source"] == "command"
    assert not TriggerFiring.objects.exists()


def test_request_campaign_refuses_unknown_people_and_campaigns(news):
    welcome = follow_up_campaign(news, REQUESTED)
    with pytest.raises(CommandError, match="No lead has the id 999999"):
        call_command("request_campaign", str(welcome.pk), "999999")
    with pytest.raises(CommandError, match="No smart campaign has the id 999999"):
        call_command("request_campaign", "999999", str(LeadFactory().pk))
    assert not Activity.objects.exists()


def test_a_request_step_needs_a_campaign_with_the_trigger_and_not_itself(news):
    batch = make_campaign(("send", news))
    step = FlowStepFactory(
        campaign=batch, action=FlowStep.Action.REQUEST_CAMPAIGN, vibes_list=None, position=1
    )
    assert step.problems() == {"requested_campaign": "Choose the campaign to request."}
    services.flow_step_update(step=step, requested_campaign=batch)
    assert step.problems() == {"requested_campaign": "A campaign cannot request itself."}
    services.flow_step_update(step=step, requested_campaign=make_campaign(("send", news)))
    assert "has no trigger “Campaign is Requested”" in step.problems()["requested_campaign"]
    services.flow_step_update(step=step, requested_campaign=follow_up_campaign(news, REQUESTED))
    assert step.problems() == {}


def test_a_blocklisted_person_is_requested_all_the_same(news, vibes_simulator):
    """A request texts nobody: the requested campaign's own run skips the blocked."""
    welcome = follow_up_campaign(news, REQUESTED)
    subscribed(news, mobile_phone=NUMBER, country="US", blocklisted=True)
    run = run_execute(
        run=run_create(campaign=requesting(welcome), trigger=CampaignRun.Trigger.COMMAND),
        client=make_client(vibes_simulator.url),
    )
    assert run.steps.get().counts == {"requested": 1}
    triggers_dispatch()
    assert welcome.runs.get().steps.get().counts == {Outcome.SKIPPED_BLOCKLISTED.code: 1}
    assert vibes_simulator.messages() == []
