import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from marketing_activities.models import (
    CampaignRun,
    CommunicationLimits,
    FlowStep,
    Folder,
    MarketingSms,
    Outcome,
    Program,
    ProgramToken,
    RunBatch,
    RunResult,
    RunStep,
    SampleSend,
    SmartCampaign,
    SmsMessage,
    SmsReply,
    TestNumber,
    TriggerFiring,
)
from tests.smscampaigns.factories import ActivityFactory, LeadFactory, SmartListFactory
from tests.vibes.factories import AcquisitionCampaignFactory, InboundMessageFactory, VibesListFactory


class FolderFactory(DjangoModelFactory):
    class Meta:
        model = Folder

    name = factory.Sequence(lambda n: f"Folder {n}")


class ProgramFactory(DjangoModelFactory):
    class Meta:
        model = Program

    name = factory.Sequence(lambda n: f"Program {n}")
    folder = factory.SubFactory(FolderFactory)


class SmsMessageFactory(DjangoModelFactory):
    class Meta:
        model = SmsMessage

    name = factory.Sequence(lambda n: f"SMS message {n}")
    program = factory.SubFactory(ProgramFactory)
    text = 'Hi {{lead.first_name|default:"there"}}, 20% off today. Reply STOP to opt out.'


class SmartCampaignFactory(DjangoModelFactory):
    class Meta:
        model = SmartCampaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    program = factory.SubFactory(ProgramFactory)
    smart_list = factory.SubFactory(SmartListFactory)


class FlowStepFactory(DjangoModelFactory):
    """A Send SMS Message step by default; traits for the other two."""

    class Meta:
        model = FlowStep

    campaign = factory.SubFactory(SmartCampaignFactory)
    position = factory.Sequence(lambda n: n)
    action = FlowStep.Action.SEND_SMS
    vibes_list = factory.SubFactory(VibesListFactory)
    sms_message = factory.SubFactory(SmsMessageFactory, program=factory.SelfAttribute("..campaign.program"))

    class Params:
        subscribe = factory.Trait(
            action=FlowStep.Action.SUBSCRIBE,
            sms_message=None,
            acquisition_campaign=factory.SubFactory(
                AcquisitionCampaignFactory, vibes_list=factory.SelfAttribute("..vibes_list")
            ),
        )
        unsubscribe = factory.Trait(action=FlowStep.Action.UNSUBSCRIBE, sms_message=None)


class CampaignRunFactory(DjangoModelFactory):
    class Meta:
        model = CampaignRun

    campaign = factory.SubFactory(SmartCampaignFactory)
    trigger = CampaignRun.Trigger.COMMAND
    status = CampaignRun.Status.COMPLETED


class RunStepFactory(DjangoModelFactory):
    class Meta:
        model = RunStep

    run = factory.SubFactory(CampaignRunFactory)
    position = 0
    action = FlowStep.Action.SEND_SMS
    vibes_list = factory.SubFactory(VibesListFactory)


class RunResultFactory(DjangoModelFactory):
    class Meta:
        model = RunResult

    run_step = factory.SubFactory(RunStepFactory)
    lead = factory.SubFactory(LeadFactory)
    outcome = Outcome.SENT
    phone = factory.SelfAttribute("lead.mobile_phone")


class RunBatchFactory(DjangoModelFactory):
    class Meta:
        model = RunBatch

    run_step = factory.SubFactory(RunStepFactory)
    first_result_id = 1
    last_result_id = 200


class SmsReplyFactory(DjangoModelFactory):
    """A reply to a result row's SMS, from its number, matched to its lead."""

    class Meta:
        model = SmsReply
        skip_postgeneration_save = True

    result = factory.SubFactory(RunResultFactory)
    run_step = factory.SelfAttribute("result.run_step")
    message = factory.SubFactory(InboundMessageFactory, mdn=factory.SelfAttribute("..result.phone"))

    @factory.post_generation
    def matched_lead(self, create, extracted, **kwargs):
        if create:
            self.message.leads.add(self.result.lead_id)


class ProgramTokenFactory(DjangoModelFactory):
    class Meta:
        model = ProgramToken

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"token{n}")
    value = "20% off"


class TestNumberFactory(DjangoModelFactory):
    """A verified test number (fictional 555-01XX numbers)."""

    __test__ = False  # a factory, not a pytest class

    class Meta:
        model = TestNumber

    number = factory.Sequence(lambda n: f"+1312555{200 + n % 100:04d}")
    label = factory.Sequence(lambda n: f"Team phone {n}")
    verified_at = factory.LazyFunction(timezone.now)


class SampleSendFactory(DjangoModelFactory):
    class Meta:
        model = SampleSend

    sms_message = factory.SubFactory(SmsMessageFactory)
    number = "+13125550200"
    text = "Hi there, 20% off today."
    status = SampleSend.Status.SENT


class CommunicationLimitsFactory(DjangoModelFactory):
    """The installation's limits (one row: saving another replaces it)."""

    class Meta:
        model = CommunicationLimits

    per_day = None
    per_week = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        limits, _created = model_class.objects.update_or_create(pk=1, defaults=kwargs)
        return limits


class MarketingSmsFactory(DjangoModelFactory):
    """A marketing SMS another campaign sent the number (`sent_at`: now unless given)."""

    class Meta:
        model = MarketingSms

    result = factory.SubFactory(RunResultFactory)
    phone = factory.SelfAttribute("result.phone")
    sent_at = factory.LazyFunction(timezone.now)
class TriggerFiringFactory(DjangoModelFactory):
    class Meta:
        model = TriggerFiring

    activity = factory.SubFactory(ActivityFactory)
    campaign = factory.SubFactory(SmartCampaignFactory)
    lead = factory.SelfAttribute("activity.lead")
    status = TriggerFiring.Status.MEMBER
