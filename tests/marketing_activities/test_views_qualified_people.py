"""View Qualified People on a batch campaign's Schedule tab (views/qualified_people.py)."""

import csv
import io
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.text import capfirst

from marketing_activities.models import AudienceCount, Outcome
from marketing_activities.runner.count_jobs import audience_count_run
from tests.marketing_activities.test_runner_audience_counts import a_world_with_every_reason
from tests.marketing_activities.test_runner_qualified_people import planned_first_step
from tests.marketing_activities.test_triggers import welcome_campaign

pytestmark = pytest.mark.django_db

COUNTS_CARD = {"HX-Request": "true", "HX-Target": "qualified-counts"}
LIST = {"HX-Request": "true", "HX-Target": "qualified-list"}


def url(campaign, **query):
    path = reverse("marketing_activities:campaign_qualified_people", args=[campaign.pk])
    return f"{path}?{urlencode(query)}" if query else path


def test_the_page_lists_the_people_with_the_results_words(staff_client, news):
    campaign = a_world_with_every_reason(news)
    response = staff_client.get(url(campaign))
    content = response.content.decode()
    assert "<html" in content and "Qualified people" in content
    assert "Will get the SMS" in content  # the confirmation's words for a call
    assert str(Outcome.SKIPPED_BLOCKLISTED.label).capitalize() in content
    assert 'hx-get="{}"'.format(url(campaign, count="exact")) in content  # the counts are asked for


def test_the_counts_card_counts_in_the_background_then_shows_the_plans_counts_by_reason(staff_client, news):
    campaign = a_world_with_every_reason(news)
    started = staff_client.get(url(campaign, count="exact"), headers=COUNTS_CARD).content.decode()
    count = AudienceCount.objects.get(campaign=campaign)
    assert "<html" not in started and "Counting them all… 0%" in started
    assert 'id="qualified-list"' not in started  # the card alone, nobody read
    audience_count_run(count_id=count.pk)
    html = staff_client.get(url(campaign, counting=count.pk), headers=COUNTS_CARD).content.decode()
    planned = planned_first_step(campaign)
    assert f"{len(planned)} people qualify" in html
    for outcome in {outcome for outcome, _other in planned.values()}:
        people = sum(1 for o, _other in planned.values() if o == outcome)
        assert f'data-reason="{outcome.code}">' in html
        label = "Will get the SMS" if outcome == Outcome.PLANNED_DRY_RUN else capfirst(outcome.label)
        assert f"{label}: {people}</a>" in html.replace("&#x27;", "'")


def test_a_reason_lists_its_people_and_pages_follow(staff_client, news):
    campaign = a_world_with_every_reason(news)
    planned = planned_first_step(campaign)
    blocked = sorted(lead for lead, (o, _other) in planned.items() if o == Outcome.SKIPPED_NOT_SUBSCRIBED)
    response = staff_client.get(url(campaign, outcome="skipped_not_subscribed"), headers=LIST)
    html = response.content.decode()
    assert html.strip().startswith('<section id="qualified-list"')
    assert [person.lead.pk for person, _label in response.context["people"]] == blocked


def test_an_unknown_reason_or_page_is_said_and_everyone_shown(staff_client, news):
    campaign = a_world_with_every_reason(news)
    response = staff_client.get(url(campaign, outcome="moon", after="x"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "“moon” is not a reason a person can get" in html and "That page could not be read" in html
    assert len(response.context["people"]) == min(50, len(planned_first_step(campaign)))


def test_the_csv_has_everyone_with_the_outcome_and_the_person_named_that_a_plan_gives(staff_client, news):
    campaign = a_world_with_every_reason(news)
    response = staff_client.get(
        reverse("marketing_activities:campaign_qualified_people_export", args=[campaign.pk])
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:6] == ["lead id", "first name", "last name", "email", "number", "outcome"]
    exported = {
        int(row[0]): (Outcome.from_code(row[5]), int(row[7] or row[8] or 0) or None) for row in rows[1:]
    }
    assert exported == planned_first_step(campaign)


def test_the_csv_of_one_reason_has_only_its_people(staff_client, news):
    campaign = a_world_with_every_reason(news)
    response = staff_client.get(
        reverse("marketing_activities:campaign_qualified_people_export", args=[campaign.pk])
        + "?outcome=skipped_duplicate_phone"
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row[5] for row in rows[1:]} == {"skipped_duplicate_phone"} and len(rows) > 1


def test_a_page_of_the_list_costs_the_same_queries_for_more_people(staff_client, news):
    campaign = a_world_with_every_reason(news)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            staff_client.get(url(campaign), headers=LIST)
        return len(captured)

    queries()
    few = queries()
    for _ in range(3):
        a_world_with_every_reason(news)
    assert queries() == few


def test_the_schedule_tab_of_a_batch_campaign_links_to_its_qualified_people(staff_client, news):
    campaign = a_world_with_every_reason(news)
    content = staff_client.get(reverse("marketing_activities:campaign_schedule", args=[campaign.pk])).content
    assert url(campaign).encode() in content


def test_a_trigger_campaign_sends_to_its_members(staff_client, news, vibes_simulator):
    campaign = welcome_campaign(news)
    response = staff_client.get(url(campaign))
    assert response.status_code == 302
    assert response["Location"] == reverse("marketing_activities:campaign_members", args=[campaign.pk])


def test_a_marketer_who_may_not_see_people_is_refused(client, django_user_model, news):
    campaign = a_world_with_every_reason(news)
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_smartcampaign", "view_folder"]))
    client.force_login(user)
    assert client.get(url(campaign)).status_code == 403
    assert (
        client.get(
            reverse("marketing_activities:campaign_qualified_people_export", args=[campaign.pk])
        ).status_code
        == 403
    )
