"""The SMS activity filters of the smart list: Was Sent SMS, SMS Was Delivered,
SMS Bounced, Replied to SMS, Clicked Link in SMS, their constraints and their
"not" forms."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from marketing_activities.links import link_click_record
from marketing_activities.models import FlowStep, Outcome, RunResult, TrackedLink
from marketing_activities.runner import campaign_preview
from smscampaigns.models import Lead
from smscampaigns.smartlists import MAX_LOGIC_DEPTH, MAX_LOGIC_REFERENCES, MAX_RULES, parse_definition
from tests.marketing_activities.factories import (
    FlowStepFactory,
    RunResultFactory,
    RunStepFactory,
    SmartCampaignFactory,
    SmsMessageFactory,
    SmsReplyFactory,
)
from tests.query_plans import full_scans, query_plan
from tests.smscampaigns.factories import LeadFactory
from tests.smscampaigns.test_smartlists_limits import SQLITE_DEPTH_MARGIN, sqlite_expression_depth

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def days_ago(days):
    return NOW - datetime.timedelta(days=days)


def picked(*rules, logic="all"):
    definition = parse_definition({"logic": logic, "rules": list(rules)})
    return set(Lead.objects.filter(definition.to_q()).values_list("email", flat=True))


def sms(email, *, message=None, outcome=Outcome.SENT, at=None, **fields):
    """A lead (made once per email) and an SMS a Send step sent them."""
    lead = Lead.objects.filter(email=email).first() or LeadFactory(email=email)
    step = RunStepFactory(sms_message=message or SmsMessageFactory())
    at = at or days_ago(1)
    return RunResultFactory(lead=lead, run_step=step, outcome=outcome, called_at=at, updated_at=at, **fields)


def rule(field, **constraints):
    return {"field": field, "op": "is any", **constraints}


# --- Was Sent SMS -------------------------------------------------------------------


def test_was_sent_sms_picks_people_vibes_took_an_sms_for_delivered_bounced_or_uncertain():
    for email, outcome in [
        ("sent@x.com", Outcome.SENT),
        ("delivered@x.com", Outcome.DELIVERED),
        ("bounced@x.com", Outcome.DELIVERY_FAILED),
        ("uncertain@x.com", Outcome.UNCERTAIN),
        ("refused@x.com", Outcome.FAILED),
        ("skipped@x.com", Outcome.SKIPPED_BLOCKLISTED),
        ("dry@x.com", Outcome.PLANNED_DRY_RUN),
    ]:
        sms(email, outcome=outcome)
    LeadFactory(email="never@x.com")
    assert picked(rule("was_sent_sms")) == {
        "sent@x.com",
        "delivered@x.com",
        "bounced@x.com",
        "uncertain@x.com",
    }


def test_was_not_sent_sms_picks_everyone_else():
    sms("sent@x.com")
    sms("refused@x.com", outcome=Outcome.FAILED)
    LeadFactory(email="never@x.com")
    assert picked(rule("was_not_sent_sms")) == {"refused@x.com", "never@x.com"}


def test_an_uncertain_subscribe_call_is_no_sms():
    lead = LeadFactory(email="subscribe@x.com")
    step = RunStepFactory(action=FlowStep.Action.SUBSCRIBE)
    RunResultFactory(lead=lead, run_step=step, outcome=Outcome.UNCERTAIN, called_at=days_ago(1))
    assert picked(rule("was_sent_sms")) == set()


def test_was_sent_sms_with_a_message_picks_only_that_message():
    welcome, reminder = SmsMessageFactory(), SmsMessageFactory()
    sms("welcome@x.com", message=welcome)
    sms("reminder@x.com", message=reminder)
    assert picked({"field": "was_sent_sms", "op": "is", "value": welcome.pk}) == {"welcome@x.com"}
    assert picked({"field": "was_not_sent_sms", "op": "is", "value": str(welcome.pk)}) == {"reminder@x.com"}


def test_was_sent_sms_in_past_days_counts_back_from_now():
    sms("recent@x.com", at=days_ago(6))
    sms("old@x.com", at=days_ago(8))
    assert picked(rule("was_sent_sms", when="in past", days=7)) == {"recent@x.com"}
    assert picked(rule("was_not_sent_sms", when="in past", days="7")) == {"old@x.com"}


def test_was_sent_sms_takes_the_time_of_the_call_not_of_the_receipt():
    result = sms("called-long-ago@x.com", at=days_ago(30), outcome=Outcome.DELIVERED)
    RunResult.objects.filter(pk=result.pk).update(updated_at=days_ago(1))
    assert picked(rule("was_sent_sms", when="in past", days=7)) == set()


def test_an_sms_sent_before_calls_had_a_time_counts_by_its_outcomes_time():
    result = sms("older-row@x.com", at=days_ago(2))
    RunResult.objects.filter(pk=result.pk).update(called_at=None)
    assert picked(rule("was_sent_sms", when="in past", days=7)) == {"older-row@x.com"}


def test_before_after_and_between_take_whole_days():
    march_first = datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC)
    sms("feb@x.com", at=march_first - datetime.timedelta(days=1))
    sms("march1@x.com", at=march_first)
    sms("march2@x.com", at=march_first + datetime.timedelta(days=1))
    assert picked(rule("was_sent_sms", when="before", date="2026-03-01")) == {"feb@x.com"}
    assert picked(rule("was_sent_sms", when="after", date="2026-03-01")) == {"march2@x.com"}
    assert picked(rule("was_sent_sms", when="between", date="2026-02-28", end_date="2026-03-01")) == {
        "feb@x.com",
        "march1@x.com",
    }
    assert picked(rule("was_sent_sms", when="after", date="2026-03-01 11:00")) == {
        "march1@x.com",
        "march2@x.com",
    }


def test_any_time_is_the_default():
    sms("long-ago@x.com", at=days_ago(3000))
    assert picked(rule("was_sent_sms")) == picked(rule("was_sent_sms", when="any time")) == {"long-ago@x.com"}


# --- SMS Was Delivered --------------------------------------------------------------------


def test_sms_was_delivered_picks_delivered_sms_at_the_receipts_time():
    sms("delivered@x.com", outcome=Outcome.DELIVERED, at=days_ago(2))
    sms("sent@x.com", outcome=Outcome.SENT)
    sms("old@x.com", outcome=Outcome.DELIVERED, at=days_ago(20))
    assert picked(rule("sms_was_delivered", when="in past", days=7)) == {"delivered@x.com"}
    assert picked(rule("sms_was_not_delivered", when="in past", days=7)) == {"sent@x.com", "old@x.com"}


def test_sms_was_delivered_with_a_message():
    welcome = SmsMessageFactory()
    sms("welcome@x.com", message=welcome, outcome=Outcome.DELIVERED)
    sms("other@x.com", outcome=Outcome.DELIVERED)
    assert picked({"field": "sms_was_delivered", "op": "is", "value": welcome.pk}) == {"welcome@x.com"}


# --- SMS Bounced ------------------------------------------------------------------------


def test_sms_bounced_picks_failed_deliveries_hard_or_soft_as_the_receipt_says():
    sms("hard@x.com", outcome=Outcome.DELIVERY_FAILED, delivery_status="undeliverable")
    sms("rejected@x.com", outcome=Outcome.DELIVERY_FAILED, delivery_status="rejected")
    sms("soft@x.com", outcome=Outcome.DELIVERY_FAILED, delivery_status="expired")
    sms("unsaid@x.com", outcome=Outcome.DELIVERY_FAILED, delivery_status="failed")
    sms("delivered@x.com", outcome=Outcome.DELIVERED, delivery_status="delivered")
    everyone_bounced = {"hard@x.com", "rejected@x.com", "soft@x.com", "unsaid@x.com"}
    assert picked(rule("sms_bounced")) == picked(rule("sms_bounced", bounce="any")) == everyone_bounced
    assert picked(rule("sms_bounced", bounce="hard")) == {"hard@x.com", "rejected@x.com"}
    # Vibes publishes no split: any failure that is not hard may pass another time.
    assert picked(rule("sms_bounced", bounce="soft")) == {"soft@x.com", "unsaid@x.com"}
    assert picked(rule("sms_did_not_bounce", bounce="hard")) == {
        "soft@x.com",
        "unsaid@x.com",
        "delivered@x.com",
    }
    assert picked(rule("sms_did_not_bounce", bounce="soft")) == {
        "hard@x.com",
        "rejected@x.com",
        "delivered@x.com",
    }


def test_sms_bounced_with_a_message_and_a_date():
    promo = SmsMessageFactory()
    sms("promo-recent@x.com", message=promo, outcome=Outcome.DELIVERY_FAILED, at=days_ago(1))
    sms("promo-old@x.com", message=promo, outcome=Outcome.DELIVERY_FAILED, at=days_ago(40))
    sms("other@x.com", outcome=Outcome.DELIVERY_FAILED, at=days_ago(1))
    assert picked({"field": "sms_bounced", "op": "is", "value": promo.pk, "when": "in past", "days": 30}) == {
        "promo-recent@x.com"
    }


# --- Replied to SMS ----------------------------------------------------------------------


def reply(email, text, *, message=None, at=None):
    result = sms(email, message=message, at=(at or days_ago(1)) - datetime.timedelta(minutes=5))
    return SmsReplyFactory(result=result, message__text=text, message__occurred_at=at or days_ago(1))


def test_replied_to_sms_picks_people_whose_reply_matched_an_sms_they_were_sent():
    reply("yes@x.com", "YES please")
    sms("silent@x.com")
    assert picked(rule("replied_to_sms")) == {"yes@x.com"}
    assert picked(rule("did_not_reply_to_sms")) == {"silent@x.com"}


def test_replied_to_sms_text_contains_or_is_ignoring_case():
    reply("yes-please@x.com", "YES please")
    reply("yes@x.com", " yes")
    reply("no@x.com", "No thanks")
    assert picked(rule("replied_to_sms", reply="contains", text="yes")) == {"yes-please@x.com", "yes@x.com"}
    assert picked(rule("replied_to_sms", reply="is", text="Yes please")) == {"yes-please@x.com"}
    assert picked(rule("did_not_reply_to_sms", reply="contains", text="yes")) == {"no@x.com"}


def test_replied_to_sms_with_a_message_and_the_replys_own_time():
    survey = SmsMessageFactory()
    reply("survey@x.com", "5", message=survey, at=days_ago(2))
    reply("survey-old@x.com", "4", message=survey, at=days_ago(12))
    reply("other@x.com", "3", at=days_ago(2))
    assert picked(
        {"field": "replied_to_sms", "op": "is", "value": survey.pk, "when": "in past", "days": 7}
    ) == {"survey@x.com"}


# --- Logic, checks and the query ------------------------------------------------------------


def test_activity_filters_combine_in_logic_expressions():
    sms("sent-replied@x.com")
    reply("sent-replied@x.com", "yes")
    sms("sent-only@x.com")
    LeadFactory(email="never@x.com")
    rules = [rule("was_sent_sms"), rule("replied_to_sms")]
    assert picked(*rules, logic="1 and not 2") == {"sent-only@x.com"}
    assert picked(*rules, logic="not 1 or 2") == {"sent-replied@x.com", "never@x.com"}


@pytest.mark.parametrize(
    ("bad_rule", "message"),
    [
        ({"field": "was_sent_sms", "op": "is"}, "Rule 1: choose an SMS message."),
        (
            {"field": "was_sent_sms", "op": "is", "value": 999999},
            "Rule 1: there is no SMS message with id 999999.",
        ),
        (
            {"field": "was_sent_sms", "op": "contains", "value": "x"},
            "Rule 1: “contains” does not apply to Was Sent SMS",
        ),
        (rule("sms_bounced", bounce="medium"), "Rule 1: “medium” is not a kind of bounce"),
        (rule("replied_to_sms", reply="contains"), "Rule 1: enter the text of the reply."),
        (rule("replied_to_sms", reply="starts"), "Rule 1: “starts” is not a reply constraint"),
        (rule("was_sent_sms", when="in past"), "Rule 1: enter the number of days."),
        (rule("was_sent_sms", when="in past", days=0), "Rule 1: “0” days is out of range"),
        (rule("was_sent_sms", when="in past", days="a week"), "Rule 1: “a week” is not a number."),
        (rule("was_sent_sms", when="yesterday"), "Rule 1: “yesterday” is not a time constraint"),
        (rule("was_sent_sms", when="before"), "Rule 1: enter the date."),
        (rule("was_sent_sms", when="after", date="2026-02-30"), "Rule 1: “2026-02-30” is not a real date"),
        (rule("was_sent_sms", when="between", date="2026-03-01"), "Rule 1: enter the last day."),
        (
            rule("was_sent_sms", when="between", date="2026-03-31", end_date="2026-03-01"),
            "Rule 1: the last day, 2026-03-01, is before the first, 2026-03-31.",
        ),
        (
            rule("was_sent_sms", when="after", date="9999-12-31"),
            "Rule 1: “9999-12-31” is the last day there is",
        ),
        (rule("was_sent_sms", colour="red"), "Rule 1: unknown key “colour”"),
    ],
)
def test_a_bad_constraint_gets_a_message_naming_the_rule(bad_rule, message):
    with pytest.raises(ValidationError) as error:
        parse_definition({"logic": "all", "rules": [bad_rule]})
    assert any(text.startswith(message) for text in error.value.messages), error.value.messages


# --- Clicked Link in SMS ------------------------------------------------------------


def click(
    email, *, message=None, url="https://example.com/offer", at=None, user_agent="Mozilla/5.0 (iPhone)"
):
    """An SMS with a tracked link sent to the lead, and a click on it."""
    row = sms(email, message=message)
    position = TrackedLink.objects.filter(result=row).count()
    link = TrackedLink.objects.create(
        code=f"c{row.pk}p{position}",
        run_step=row.run_step,
        result=row,
        lead=row.lead,
        position=position,
        url=url,
    )
    return link_click_record(link=link, user_agent=user_agent, when=at or days_ago(1))


def test_clicked_link_in_sms_picks_people_who_clicked_never_a_link_preview():
    click("clicked@x.com")
    click("previewed@x.com", user_agent="WhatsApp/2.23")
    sms("sent-only@x.com")
    assert picked(rule("clicked_link_in_sms")) == {"clicked@x.com"}
    assert picked(rule("did_not_click_link_in_sms")) == {"previewed@x.com", "sent-only@x.com"}


def test_clicked_link_in_sms_with_a_message_a_link_and_a_date():
    offer = SmsMessageFactory()
    click("offer-shoes@x.com", message=offer, url="https://shop.example.com/shoes")
    click("offer-hats@x.com", message=offer, url="https://shop.example.com/hats")
    click("other-message@x.com", url="https://shop.example.com/shoes")
    click("long-ago@x.com", message=offer, url="https://shop.example.com/shoes", at=days_ago(30))
    assert picked({"field": "clicked_link_in_sms", "op": "is", "value": offer.pk, "link": "SHOES"}) == {
        "offer-shoes@x.com",
        "long-ago@x.com",
    }
    assert picked(
        {"field": "clicked_link_in_sms", "op": "is", "value": offer.pk, "when": "in past", "days": 7}
    ) == {"offer-shoes@x.com", "offer-hats@x.com"}


def test_clicked_link_in_sms_reads_a_leads_clicks_through_an_index():
    click("clicked@x.com")
    leads = Lead.objects.filter(
        parse_definition({"logic": "all", "rules": [rule("clicked_link_in_sms", link="offer")]}).to_q()
    )
    assert full_scans(leads, but="smscampaigns_lead") == []


def test_a_smart_list_of_every_activity_filter_is_still_one_query(django_assert_num_queries):
    reply("replied@x.com", "yes")
    welcome = SmsMessageFactory()
    definition = parse_definition(
        {
            "logic": "(1 or 2) and not 3 and (4 or 5 or 6 or 7 or 8 or 9 or 10)",
            "rules": [
                {"field": "was_sent_sms", "op": "is", "value": welcome.pk, "when": "in past", "days": 7},
                rule("was_sent_sms", when="between", date="2026-01-01", end_date="2099-12-31"),
                rule("sms_bounced", bounce="hard"),
                rule("sms_was_delivered", when="before", date="2099-01-01"),
                rule("replied_to_sms", reply="contains", text="yes"),
                rule("was_not_sent_sms", when="after", date="2099-01-01"),
                rule("sms_was_not_delivered"),
                rule("did_not_reply_to_sms", when="in past", days=1),
                rule("clicked_link_in_sms", link="offer"),
                rule("did_not_click_link_in_sms", when="in past", days=7),
            ],
        }
    )
    with django_assert_num_queries(1):
        assert Lead.objects.filter(definition.to_q()).count() == 1


@pytest.mark.parametrize(
    "activity_rule",
    [
        rule("was_sent_sms", when="in past", days=7),
        rule("sms_was_not_delivered"),
        rule("sms_bounced", bounce="soft"),
        rule("replied_to_sms", reply="contains", text="yes"),
        rule("did_not_reply_to_sms"),
        {"field": "was_sent_sms", "op": "is", "value": "the message"},
        {"field": "did_not_reply_to_sms", "op": "is", "value": "the message"},
    ],
)
def test_each_sms_filter_reads_a_leads_sms_through_an_index_never_the_runs_whole(activity_rule):
    reply("replied@x.com", "yes")
    message = SmsMessageFactory()
    sms("other@x.com", message=message)
    if activity_rule.get("value") == "the message":
        activity_rule = {**activity_rule, "value": message.pk}
    leads = Lead.objects.filter(parse_definition({"logic": "all", "rules": [activity_rule]}).to_q())
    assert full_scans(leads, but="smscampaigns_lead") == []
    if connection.vendor == "sqlite":
        # The partial index on a lead's calls: the filters repeat its condition so that SQLite uses it;
        # a filter on receipts may read the smaller one of the settled SMS (the activity log's).
        indexes = ("run_result_lead_activity", "run_result_lead_receipt")
        assert any(index in line for line in query_plan(leads) for index in indexes)


def test_the_largest_smart_list_of_activity_filters_runs_on_sqlite_with_half_its_depth():
    """Every rule an activity filter with every constraint (the deepest subqueries),
    the logic as long and as deep as the limits allow: SQLite counts a subquery's
    conditions into the depth of the expression around it."""
    if connection.vendor != "sqlite":
        # PostgreSQL has no such limit; it runs this list too, but its JIT compiles the
        # two hundred subqueries for seconds (see the README's smart lists section).
        pytest.skip("SQLite's expression depth")
    survey = SmsMessageFactory()
    reply("replied@x.com", "yes please", message=survey)
    sms("sent-only@x.com", message=survey)
    replied = {
        "op": "is",
        "value": survey.pk,
        "when": "between",
        "date": "2000-01-01",
        "end_date": "2099-12-31",
        "reply": "contains",
        "text": "yes",
    }
    rules = [
        {"field": "replied_to_sms" if number % 2 else "did_not_reply_to_sms", **replied}
        for number in range(1, MAX_RULES + 1)
    ]
    levels = MAX_LOGIC_DEPTH // 2
    outer = list(range(MAX_RULES - 2 * levels + 1, MAX_RULES + 1))
    inner = [n for n in range(1, MAX_RULES + 1) if n not in outer]
    inner = (inner * 3)[: MAX_LOGIC_REFERENCES - len(outer)]
    logic = " or ".join(map(str, inner))
    for level in range(levels):
        a, b = outer[2 * level : 2 * level + 2]
        logic = f"not ({logic} and {a} and {b})"
    definition = parse_definition({"logic": logic, "rules": rules})
    # The chain holds for everyone (odd and even rules both in it); each level is
    # "not (true and replied and not replied)": true for both, ten times over.
    campaign = SmartCampaignFactory(smart_list__definition={"logic": logic, "rules": rules})
    FlowStepFactory(campaign=campaign, position=0)
    with sqlite_expression_depth(SQLITE_DEPTH_MARGIN):
        assert set(Lead.objects.filter(definition.to_q()).values_list("email", flat=True)) == {
            "replied@x.com",
            "sent-only@x.com",
        }
        # A run plans with the smart list inside larger statements: the preview plans as a run does.
        assert campaign_preview(campaign=campaign, sample_size=0).audience == 2
