"""The inbound messages list says which campaign's SMS each reply answers."""

import pytest
from django.urls import reverse

from tests.marketing_activities.factories import SmsReplyFactory
from tests.vibes.factories import InboundMessageFactory

pytestmark = pytest.mark.django_db


def test_each_reply_links_to_the_results_of_the_run_it_answers(admin_client):
    reply = SmsReplyFactory(message__text="What time do you open?")
    InboundMessageFactory(text="Who is this?")
    run = reply.run_step.run
    html = admin_client.get(reverse("admin:vibes_inboundmessage_changelist")).content.decode()
    results = reverse("marketing_activities:campaign_results", args=[run.campaign_id])
    assert (
        f'<a href="{results}?run={run.pk}&amp;step=0&amp;replied=1">{run.campaign}, run {run.pk}, step 1</a>'
        in html
    )
    row = next(row for row in html.split("<tr") if "Who is this?" in row)
    assert "—" in row and results not in row


def test_the_list_takes_the_same_queries_however_many_replies_it_shows(
    admin_client, django_assert_max_num_queries
):
    SmsReplyFactory.create_batch(30)
    with django_assert_max_num_queries(8):
        assert admin_client.get(reverse("admin:vibes_inboundmessage_changelist")).status_code == 200
