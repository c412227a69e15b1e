"""The people behind each figure (reporting/people.py, read from the raw rows)
are as many as the figure kept by the rollups, after SMS of every kind."""

import datetime

import pytest
import time_machine
from django.utils import timezone

from marketing_activities.models import Outcome
from marketing_activities.receipts import handle_receipts
from marketing_activities.reporting.figures import Scope, SmsFigures, sms_figures
from tests.marketing_activities.campaigns import execute, make_campaign
from tests.marketing_activities.reporting.scenarios import click, link_campaign, people, receipt, settled
from tests.waiting import DEADLINE, wait_until
from vibes.subscriptions import subscriptions_opt_out_number

people_module = pytest.importorskip("marketing_activities.reporting.people")

pytestmark = pytest.mark.django_db(transaction=True)

FIGURES = ("sent", "delivered", "failed", "failed_hard", "failed_soft", "replied", "clicked", "unsubscribed")


def test_every_figure_counts_the_people_behind_it(news, vibes_simulator):
    people(news, 8)
    campaign = link_campaign(news)
    run = execute(campaign, vibes_simulator)
    rows = list(run.steps.get().results().order_by("pk"))
    handle_receipts(
        [
            receipt(rows[0], "delivered"),
            receipt(rows[1], "delivered"),
            receipt(rows[2], "undeliverable"),
            receipt(rows[3], "failed"),
        ]
    )
    click(rows[0])
    click(rows[1], user_agent="facebookexternalhit/1.1")
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=1), tick=False):
        subscriptions_opt_out_number(
            mdn=rows[4].phone, vibes_list=news, reason="user_opt_out", source="callback"
        )
    with time_machine.travel(timezone.now() + datetime.timedelta(days=8), tick=False):
        subscriptions_opt_out_number(
            mdn=rows[5].phone, vibes_list=news, reason="user_opt_out", source="callback"
        )
    execute(make_campaign(("send", news)), vibes_simulator)  # the other campaign's SMS: not this one's

    # Every figure but the replies has people behind it (replies come in a test of their own).
    assert sms_figures(Scope("campaign", campaign.pk)) == SmsFigures(
        sent=8, delivered=2, failed=2, failed_hard=1, failed_soft=1, clicked=1, unsubscribed=1
    )
    hour = rows[0].called_at.replace(minute=0, second=0, microsecond=0)
    for scope in (
        Scope("message", campaign.flow_steps.get().sms_message_id),
        Scope("campaign", campaign.pk),
        Scope("program", campaign.program_id),
        Scope("vibes_list", news.pk),
        Scope("installation"),
    ):
        for start, end in ((None, None), (hour, hour + datetime.timedelta(hours=1))):
            figures = sms_figures(scope, start=start, end=end)
            for figure in FIGURES:
                people_behind = people_module.figure_people(scope, figure, start=start, end=end).count()
                assert people_behind == getattr(figures, figure), (scope, figure, start)


def test_every_figure_counts_the_people_behind_it_after_receipts_and_replies_from_vibes(
    news, vibes_simulator, vibes_live_callbacks
):
    people(news, 12)
    vibes_simulator.set_faults(receipt_failure_rate=0.4)
    campaign = make_campaign(("send", news))
    rows = execute(campaign, vibes_simulator).steps.get().results()
    settled(vibes_simulator, rows, [Outcome.DELIVERED, Outcome.DELIVERY_FAILED])
    for phone in rows.filter(outcome=Outcome.DELIVERED).values_list("phone", flat=True)[:3]:
        vibes_simulator.reply(phone, "Yes please")
    assert vibes_simulator.wait_for_callbacks(DEADLINE)
    wait_until(lambda: sms_figures(Scope("campaign", campaign.pk)).replied == 3, what="the replies")

    for scope in (Scope("campaign", campaign.pk), Scope("vibes_list", news.pk), Scope("installation")):
        figures = sms_figures(scope)
        for figure in FIGURES:
            assert people_module.figure_people(scope, figure).count() == getattr(figures, figure), (
                scope,
                figure,
            )
