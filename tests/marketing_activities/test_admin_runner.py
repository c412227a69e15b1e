"""Admin actions: Run now (confirmed first), Preview audience; a run's counts; a lead's SMS activity."""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import TestCase
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape

from marketing_activities.models import AudienceCount, CampaignRun, FlowStep, Outcome
from marketing_activities.runner import run_create, run_execute
from tests.marketing_activities.campaigns import make_campaign, subscribed
from tests.marketing_activities.factories import RunStepFactory
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def news(news, settings):
    """The simulator's newsletter, and runs that Run now starts in the request."""
    settings.RUNNER_BACKGROUND = "inline"
    return news


def act(client, model, action, objects):
    return client.post(
        reverse(f"admin:marketing_activities_{model}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects]},
        follow=True,
    )


def counted(client, campaigns, **headers):
    """The confirmation's counts, which its page asks for once it is shown (the
    counting runs here, as the request's transaction commits), then polls."""
    selected = {ACTION_CHECKBOX_NAME: [c.pk for c in campaigns]}
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.get(reverse("admin:marketing_activities_smartcampaign_run_now"), selected, headers=headers)
    counts = AudienceCount.objects.filter(campaign__in=campaigns).values_list("pk", flat=True)
    return client.get(
        reverse("admin:marketing_activities_smartcampaign_run_now_progress"),
        {**selected, "counting": list(counts)},
        headers=headers,
    )


def confirm(client, campaigns):
    """The confirmation page's form, sent back: what "Yes, run now" posts."""
    return client.post(
        reverse("admin:marketing_activities_smartcampaign_changelist"),
        {"action": "run_now", "post": "yes", ACTION_CHECKBOX_NAME: [c.pk for c in campaigns]},
        follow=True,
    )


def test_run_now_asks_first_with_the_counts_per_step_and_sends_nothing(admin_client, news, vibes_simulator):
    subscribed(news, first_name="Anna")
    subscribed(news, blocklisted=True)
    LeadFactory()  # in the smart list, not on the Vibes list
    campaign = make_campaign(("send", news), ("unsubscribe", news))
    response = act(admin_client, "smartcampaign", "run_now", [campaign])
    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == (
        "admin/marketing_activities/smartcampaign/run_now_confirmation.html"
    )
    # The page opens at once, counting; the runs can be confirmed once the counts are shown.
    content = response.content.decode()
    counts_url = (
        f"{reverse('admin:marketing_activities_smartcampaign_run_now')}?_selected_action={campaign.pk}"
    )
    assert f'hx-get="{counts_url}" hx-trigger="load"' in content
    assert f'<a href="{counts_url}">Counting them all…</a>' in content
    assert '<input type="submit" value="Yes, run now" disabled>' in content
    assert "people qualify" not in content
    response = counted(admin_client, [campaign])
    content = response.content.decode()
    assert "<html" in content  # without JavaScript, its link opens the page with the counts
    assert '<input type="submit" value="Yes, run now">' in content
    assert "3 people qualify" in content
    step_1 = content.index("1. Send SMS Message")
    step_2 = content.index("2. Unsubscribe from Vibes List")
    assert step_1 < content.index("Will get the SMS") < step_2
    assert step_1 < content.index("Skipped: blocklisted") < step_2
    assert content.index("Will be unsubscribed") > step_2
    assert 'name="post" value="yes"' in content
    assert f'name="_selected_action" value="{campaign.pk}"' in content
    assert not CampaignRun.objects.exists()
    assert vibes_simulator.messages() == []


def test_run_now_counts_are_the_schedule_tabs_counts(admin_client, staff_client, news):
    """One service (runner/count_jobs.py) behind both confirmations."""
    subscribed(news)
    subscribed(news, marketing_suspended=True)
    campaign = make_campaign(("send", news))
    admin_page = counted(admin_client, [campaign], HX_Request="true").content.decode()
    assert admin_page.lstrip().startswith('<div id="run-now-previews">')  # htmx: only what the counts replace
    run_now = reverse("marketing_activities:campaign_run_now", args=[campaign.pk])
    with TestCase.captureOnCommitCallbacks(execute=True):
        staff_client.get(run_now, {"count": "exact"})
    count = AudienceCount.objects.filter(campaign=campaign).latest("pk")
    tab = staff_client.get(run_now, {"counting": count.pk}).content.decode()
    for words in ("2 people qualify", "Will get the SMS", "Skipped: marketing suspended"):
        assert words in admin_page and words in tab


def test_confirming_run_now_starts_the_run(
    admin_client, news, vibes_simulator, django_capture_on_commit_callbacks
):
    subscribed(news)
    campaign = make_campaign(("send", news))
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, [campaign])
    run = CampaignRun.objects.get()
    assert f"{campaign}: run {run.pk} started." in response.content.decode()
    assert run.trigger == CampaignRun.Trigger.ADMIN
    assert run.requested_by.username == "admin"
    assert CampaignRun.objects.get().status == CampaignRun.Status.COMPLETED
    assert len(vibes_simulator.messages()) == 1


def test_run_now_says_why_a_campaign_cannot_run_and_offers_no_run(admin_client, news):
    campaign = make_campaign(("subscribe", news))
    FlowStep.objects.filter(campaign=campaign).update(acquisition_campaign=None)
    content = act(admin_client, "smartcampaign", "run_now", [campaign]).content.decode()
    assert "The campaign cannot run yet:" in content
    assert "Step 1 (Subscribe to Vibes List): Choose an acquisition campaign" in content
    assert 'name="post"' not in content
    # A confirmation sent anyway (the flow broke after the page was shown) is refused the same way.
    response = confirm(admin_client, [campaign])
    assert "Step 1 (Subscribe to Vibes List): Choose an acquisition campaign" in response.content.decode()
    assert not CampaignRun.objects.exists()


def test_run_now_leaves_out_the_campaigns_that_cannot_run(admin_client, news):
    subscribed(news)
    ready = make_campaign(("send", news))
    broken = make_campaign(("subscribe", news))
    FlowStep.objects.filter(campaign=broken).update(acquisition_campaign=None)
    content = act(admin_client, "smartcampaign", "run_now", [ready, broken]).content.decode()
    assert "The campaigns that cannot run are left out." in content
    assert f'name="_selected_action" value="{ready.pk}"' in content
    assert f'name="_selected_action" value="{broken.pk}"' not in content


def test_run_now_refuses_when_nobody_is_left_to_qualify(
    admin_client, news, vibes_simulator, django_capture_on_commit_callbacks
):
    subscribed(news)
    campaign = make_campaign(("send", news), qualification="once")
    with django_capture_on_commit_callbacks(execute=True):
        confirm(admin_client, [campaign])
    response = counted(admin_client, [campaign])
    assert "Nobody is left to qualify: the 1 person the smart list picks" in response.content.decode()
    assert CampaignRun.objects.count() == 1
    assert len(vibes_simulator.messages()) == 1
    assert "Yes, run now" not in response.content.decode()
    # Confirming anyway (a stale page) starts nothing either.
    confirm(admin_client, [campaign])
    assert CampaignRun.objects.count() == 1


def test_preview_audience_counts_by_reason_and_sends_nothing(admin_client, news, vibes_simulator):
    subscribed(news, email="in@example.com")
    subscribed(news, blocklisted=True)
    LeadFactory()
    campaign = make_campaign(("send", news))
    response = act(admin_client, "smartcampaign", "preview_audience", [campaign])
    content = response.content.decode()
    assert "3 people in the audience" in content
    assert "skipped: blocklisted: 1" in content
    assert "in@example.com" in content
    assert not CampaignRun.objects.exists()
    assert vibes_simulator.messages() == []


def test_a_leads_page_lists_its_sms_activity_newest_first(admin_client, news, vibes_simulator):
    lead = subscribed(news, mobile_phone="+15551239876")
    campaign = make_campaign(("send", news), ("unsubscribe", news))
    vibes_simulator.add_subscriber("101", "+15551239876", external_person_id=str(lead.pk))
    from marketing_activities.runner import run_create, run_execute

    run_execute(run=run_create(campaign=campaign, trigger="command"))
    content = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[lead.pk])).content.decode()
    sent = content.index("(Send SMS Message): sent")
    unsubscribed = content.index("(Unsubscribe from Vibes List): unsubscribed")
    change = content.index("subscribed → unsubscribed")
    assert change < unsubscribed < sent  # newest first


def test_a_runs_page_shows_its_counts_as_a_table_with_the_results_words(admin_client):
    step = RunStepFactory(counts={"sent": 1234, "skipped_blocklisted": 2, "failed": 0, "no_such_outcome": 5})
    content = admin_client.get(
        reverse("admin:marketing_activities_campaignrun_change", args=[step.run.pk])
    ).content.decode()
    table = content[content.index('<table class="outcome-counts">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr><td>(.*?)</td><td class=\"numeric\">(.*?)</td></tr>", table)
    assert rows == [(str(Outcome.SENT.label), "1,234"), (escape(Outcome.SKIPPED_BLOCKLISTED.label), "2")]
    assert "skipped_blocklisted" not in content  # no raw JSON


def test_the_counts_table_speaks_the_admins_language(admin_client):
    step = RunStepFactory(counts={"sent": 1234})
    admin_client.cookies["django_language"] = "de"
    # The request makes German the language of this thread: the block ends that too.
    with translation.override("de"):
        sent = str(Outcome.SENT.label)
        content = admin_client.get(
            reverse("admin:marketing_activities_campaignrun_change", args=[step.run.pk])
        ).content.decode()
    assert f'<tr><td>{sent}</td><td class="numeric">1.234</td></tr>' in content


def test_preview_audience_names_who_blocks_a_number(admin_client, news):
    eve = LeadFactory(
        first_name="Eve", last_name="Stone", mobile_phone="+15551239870", blocklisted=True, country="SE"
    )
    subscribed(news, mobile_phone="+15551239870")
    campaign = make_campaign(("send", news))
    content = act(admin_client, "smartcampaign", "preview_audience", [campaign]).content.decode()
    assert "skipped: number shared with a blocklisted person: 1" in content
    assert "1 because of Eve Stone" in content
    assert reverse("admin:smscampaigns_lead_change", args=[eve.pk]) in content


def test_a_leads_activity_shows_a_skip_for_its_numbers_block_and_whose_block_it_is(admin_client, news):
    LeadFactory(first_name="Eve", last_name="Stone", mobile_phone="+15551239871", marketing_suspended=True)
    lead = subscribed(news, mobile_phone="+15551239871")
    run_execute(run=run_create(campaign=make_campaign(("send", news)), trigger="command"))
    content = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[lead.pk])).content.decode()
    assert "(Send SMS Message): skipped: number shared with a marketing-suspended person" in content
    assert "+15551239871 · because of Eve Stone" in content
