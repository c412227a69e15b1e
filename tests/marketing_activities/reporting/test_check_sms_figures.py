"""`manage.py check_sms_figures`: the rollups against a recount from the raw rows."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from marketing_activities.models import SmsHourlyFigures
from marketing_activities.receipts import handle_receipt
from tests.marketing_activities.campaigns import execute, make_campaign
from tests.marketing_activities.reporting.scenarios import assert_rollups_equal_a_recount, people, receipt

pytestmark = pytest.mark.django_db(transaction=True)


def check(*args) -> str:
    out = io.StringIO()
    call_command("check_sms_figures", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def sent(news, vibes_simulator):
    people(news, 3)
    run = execute(make_campaign(("send", news)), vibes_simulator)
    handle_receipt(receipt(run.steps.get().results().order_by("pk").first(), "delivered"))
    return run


def test_rollups_that_agree_with_the_recount_pass_the_check(sent):
    assert "agree" in check()


def test_the_check_finds_a_tampered_rollup_and_names_its_hour_and_scope(sent):
    row = SmsHourlyFigures.objects.get()
    SmsHourlyFigures.objects.filter(pk=row.pk).update(delivered=F("delivered") + 2)
    out = io.StringIO()
    with pytest.raises(CommandError, match="differ from a recount in 1 places") as raised:
        call_command("check_sms_figures", stdout=out)
    assert raised.value.returncode == 1
    assert out.getvalue() == (
        f"{row.hour:%Y-%m-%d %H}:00 UTC, campaign {row.campaign_id}, SMS message {row.sms_message_id}, "
        f"Vibes list {row.vibes_list_id}: delivered 3 kept, 1 counted\n"
    )


def test_fix_rebuilds_the_rollups_from_the_raw_rows(sent):
    SmsHourlyFigures.objects.update(sent=F("sent") + 5)
    SmsHourlyFigures.objects.create(
        hour=SmsHourlyFigures.objects.get().hour.replace(year=2020), campaign=sent.campaign, sent=4
    )
    assert "Rebuilt" in check("--fix")
    assert "agree" in check()
    assert SmsHourlyFigures.objects.get().sent == 3
    assert_rollups_equal_a_recount()


def test_a_since_that_is_not_a_date_is_refused_clearly():
    with pytest.raises(CommandError, match="--since 'yesterday': not a date"):
        call_command("check_sms_figures", "--since", "yesterday")
