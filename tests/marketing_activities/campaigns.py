"""Campaigns to run in tests: a flow of steps on Vibes lists, the people
subscribed to those lists, and a run of the campaign against the simulator."""

from marketing_activities.models import CampaignRun
from marketing_activities.runner import run_create, run_execute
from tests.marketing_activities.factories import FlowStepFactory, SmartCampaignFactory, SmsMessageFactory
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory
from tests.vibes.simulated import make_client


def make_campaign(*steps, rule=None, qualification="every_time"):
    """A campaign of the US people (or of `rule`) whose flow has `steps`:
    ("send" | "subscribe" | "unsubscribe", vibes list) each."""
    campaign = SmartCampaignFactory(
        qualification_rule=qualification,
        smart_list__definition={
            "logic": "all",
            "rules": [rule or {"field": "country", "op": "is", "value": "US"}],
        },
    )
    for position, (action, vibes_list) in enumerate(steps):
        options = {"send": {}, "subscribe": {"subscribe": True}, "unsubscribe": {"unsubscribe": True}}[action]
        if action == "subscribe":
            options["acquisition_campaign"] = vibes_list.acquisition_campaigns.first()
        if action == "send":
            options["sms_message"] = SmsMessageFactory(
                program=campaign.program, text='Hi {{lead.first_name|default:"there"}}, 20% off today.'
            )
        FlowStepFactory(campaign=campaign, position=position, vibes_list=vibes_list, **options)
    return campaign


def execute(campaign, simulator, **client_options):
    """A run of the campaign, executed through a client of the simulator (`make_client`)."""
    run = run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND)
    return run_execute(run=run, client=make_client(simulator.url, **client_options), concurrency=4)


def subscribed(vibes_list, **fields):
    """A new lead (with `fields`) subscribed to the list."""
    return SubscriptionFactory(vibes_list=vibes_list, status="subscribed", lead=LeadFactory(**fields)).lead
