"""SMS to report on, produced through the product's own paths: runs against
the simulator, receipts through the receipt handlers, replies through the
inbound path, clicks through the click service, unsubscriptions through the
subscription service."""

from marketing_activities.links import link_by_code, link_click_record
from marketing_activities.models import SmsHourlyFigures, TrackedLink
from marketing_activities.reporting.rollups import COUNTERS, sms_figures_recount
from marketing_activities.runner.references import PREFIX
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.waiting import DEADLINE, wait_until
from vibes.callbacks import DeliveryReceipt

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def rollups() -> dict:
    """The rollups by key, without the rows whose figures are all zero (as the recount gives them)."""
    return {
        (row[0], row[1], row[2], row[3]): tuple(row[4:])
        for row in SmsHourlyFigures.objects.values_list(
            "hour", "campaign_id", "sms_message_id", "vibes_list_id", *COUNTERS
        )
        if any(row[4:])
    }


def assert_rollups_equal_a_recount():
    recount = sms_figures_recount()
    assert rollups() == recount
    return recount


def totals(figures: dict) -> dict:
    """The figures of every key added up, by name."""
    return {name: sum(counts[at] for counts in figures.values()) for at, name in enumerate(COUNTERS)}


def people(vibes_list, count, *, prefix="+1555300"):
    return [subscribed(vibes_list, first_name=f"P{n}", mobile_phone=f"{prefix}{n:04d}") for n in range(count)]


def link_campaign(vibes_list):
    """A campaign texting its people a tracked link."""
    campaign = make_campaign(("send", vibes_list))
    message = campaign.flow_steps.get().sms_message
    message.text = "Hi {{lead.first_name}}: https://shop.example.com/sale"
    message.save()
    return campaign


def click(result, *, user_agent=BROWSER, when=None):
    """A click on the SMS's tracked link, as the short link's view records it."""
    link = link_by_code(TrackedLink.objects.get(result=result).code)
    return link_click_record(link=link, user_agent=user_agent, when=when)


def settled(simulator, rows, outcomes):
    """Wait until the simulator delivered its callbacks and every row has one of `outcomes`."""
    assert simulator.wait_for_callbacks(DEADLINE)
    wait_until(lambda: not rows.exclude(outcome__in=outcomes).exists(), what="the receipts")


def receipt(row, status, *, at=None) -> DeliveryReceipt:
    """Vibes' delivery receipt for the SMS of this row, as the callbacks read it."""
    return DeliveryReceipt(
        message_id=row.vibes_message_id,
        mdn=row.phone,
        status=status,
        reference=f"{PREFIX}{row.pk}",
        occurred_at=at,
    )
