"""Campaign Members (campaign_members.py and views/campaign_members.py): who
entered a trigger campaign, when, and their outcome at each step."""

import csv
import datetime
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from marketing_activities.campaign_members import campaign_members_page
from marketing_activities.models import Outcome, TriggerFiring
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.activities import activities_record
from tests.marketing_activities.test_triggers import _subscribed, welcome_campaign
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fired(news, vibes_simulator):
    """A welcome campaign fired through the real dispatcher for three people, a
    second apart: one texted, one blocklisted (fired, never texted), one
    failing the smart list's rule (filtered out)."""
    campaign = welcome_campaign(news, rule={"field": "country", "op": "is not", "value": "SE"})
    texted = LeadFactory(mobile_phone="+15551237001", first_name="Tess")
    blocked = LeadFactory(mobile_phone="+15551237002", first_name="Bo", blocklisted=True)
    outside = LeadFactory(mobile_phone="+15551237003", first_name="Sven", country="SE")
    start = timezone.now().replace(microsecond=0)
    for second, lead in enumerate((texted, blocked, outside)):
        SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
        when = start + datetime.timedelta(seconds=second)
        activities_record(activities=[_subscribed(lead, news, when, key=f"members:{lead.pk}")])
        triggers_dispatch()
    return campaign, texted, blocked, outside


def test_members_are_the_firings_newest_first_with_their_outcome_at_each_step(fired):
    campaign, texted, blocked, outside = fired
    members = campaign_members_page(campaign=campaign).members
    assert [member.firing.lead for member in members] == [outside, blocked, texted]
    assert [member.firing.status for member in members] == ["filtered_out", "member", "member"]
    assert [[(s.number, s.outcome) for s in member.steps] for member in members] == [
        [],
        [(1, Outcome.SKIPPED_BLOCKLISTED)],
        [(1, Outcome.SENT)],
    ]


def test_members_are_filtered_by_their_outcome_at_a_step_and_by_status(fired):
    campaign, texted, blocked, _outside = fired
    sent = campaign_members_page(campaign=campaign, outcome=Outcome.SENT).members
    assert [member.firing.lead for member in sent] == [texted]
    members = campaign_members_page(campaign=campaign, status=TriggerFiring.Status.MEMBER).members
    assert [member.firing.lead for member in members] == [blocked, texted]


def test_older_pages_follow_the_last_member_shown(fired):
    campaign, texted, blocked, outside = fired
    first = campaign_members_page(campaign=campaign, page_size=2)
    assert [m.firing.lead for m in first.members] == [outside, blocked]
    second = campaign_members_page(campaign=campaign, page_size=2, older=first.older)
    assert [m.firing.lead for m in second.members] == [texted] and second.older is None


def test_a_page_costs_the_same_queries_for_two_members_as_for_forty(
    news, vibes_simulator, django_assert_num_queries
):
    campaign = welcome_campaign(news)
    start = timezone.now().replace(microsecond=0)

    def fire(count, offset):
        for n in range(count):
            lead = LeadFactory(mobile_phone=f"+1555124{offset + n:04d}")
            SubscriptionFactory(lead=lead, vibes_list=news, status="subscribed")
            when = start + datetime.timedelta(seconds=offset + n)
            activities_record(activities=[_subscribed(lead, news, when, key=f"many:{lead.pk}")])
        triggers_dispatch()

    fire(2, 0)
    with django_assert_num_queries(3):
        assert len(campaign_members_page(campaign=campaign).members) == 2
    fire(38, 100)
    with django_assert_num_queries(3):
        assert len(campaign_members_page(campaign=campaign).members) == 40


# --- The screen ------------------------------------------------------------------------


def members_url(campaign, **query):
    from urllib.parse import urlencode

    url = reverse("marketing_activities:campaign_members", args=[campaign.pk])
    return f"{url}?{urlencode(query)}" if query else url


def test_the_members_page_is_a_whole_page_and_its_list_a_partial(staff_client, fired):
    campaign, *_people = fired
    page = staff_client.get(members_url(campaign)).content.decode()
    assert "<html" in page and "Campaign members" in page and "Tess" in page and "Sven" in page
    partial = staff_client.get(
        members_url(campaign, outcome="skipped_blocklisted"),
        headers={"HX-Request": "true", "HX-Target": "members-list"},
    ).content.decode()
    assert "<html" not in partial and partial.strip().startswith('<section id="members-list"')
    assert "Bo" in partial and "Tess" not in partial


def test_the_schedule_tab_of_a_trigger_campaign_links_to_its_members(staff_client, fired):
    campaign, *_people = fired
    content = staff_client.get(reverse("marketing_activities:campaign_schedule", args=[campaign.pk])).content
    assert members_url(campaign).encode() in content


def test_an_unknown_outcome_or_page_is_said_and_everyone_shown(staff_client, fired):
    campaign, *_people = fired
    response = staff_client.get(members_url(campaign, outcome="sent_to_mars", older="x"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "“sent_to_mars” is not a step outcome" in content and "That page could not be read" in content
    assert "Tess" in content and "Sven" in content


def test_the_members_csv_has_each_member_with_their_outcome_per_step(staff_client, fired):
    campaign, texted, blocked, outside = fired
    response = staff_client.get(
        reverse("marketing_activities:campaign_members_export", args=[campaign.pk]) + "?status=member"
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:2] == ["fired", "lead id"]
    assert [(row[1], row[2], row[8], row[10]) for row in rows[1:]] == [
        (str(blocked.pk), "Bo", "ran through the flow", "1. Send SMS Message: skipped: blocklisted"),
        (str(texted.pk), "Tess", "ran through the flow", "1. Send SMS Message: sent"),
    ]


def test_a_marketer_who_may_not_see_runs_is_refused(client, django_user_model, fired):
    campaign, *_people = fired
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_smartcampaign", "view_lead", "view_folder"])
    )
    client.force_login(user)
    assert client.get(members_url(campaign)).status_code == 403
