"""The triggers about a person's record: Person is Created (import, admin, Vibes sync)
and Data Value Changes (from an import and from the admin)."""

import io

import pytest
from django.urls import reverse

from marketing_activities.models import TriggerFiring
from marketing_activities.triggers import triggers_dispatch
from smscampaigns.models import Activity, Lead
from smscampaigns.services import leads_import
from tests.marketing_activities.test_sms_triggers import follow_up_campaign
from tests.marketing_activities.test_triggers import NUMBER
from tests.smscampaigns.factories import LeadFactory
from vibes.models import Subscription
from vibes.subscriber_sync import subscribers_sync

pytestmark = pytest.mark.django_db


def fired(campaign):
    return list(TriggerFiring.objects.filter(campaign=campaign).values_list("lead__email", flat=True))


def test_an_import_fires_person_is_created_from_an_import_only(news):
    from_import = follow_up_campaign(news, {"trigger": "person_created", "source": "import"})
    from_admin = follow_up_campaign(news, {"trigger": "person_created", "source": "admin"})
    leads_import(file=io.BytesIO(b"Email,Mobile Phone\nnew@example.com,+15551237001\n"), file_name="a.csv")
    triggers_dispatch()

    assert Activity.objects.get().attributes == {"source": "import"}
    assert fired(from_import) == ["new@example.com"]
    assert fired(from_admin) == []


def test_an_import_fires_data_value_changes_with_the_new_and_previous_value(news):
    LeadFactory(email="ann@example.com", country="US", city="Boston")
    to_se = follow_up_campaign(
        news, {"trigger": "data_value_changes", "field": "country", "new": "se", "previous": "US"}
    )
    to_de = follow_up_campaign(news, {"trigger": "data_value_changes", "field": "country", "new": "DE"})
    city = follow_up_campaign(news, {"trigger": "data_value_changes", "field": "city"})
    csv = b"Email,Country,City\nann@example.com,SE,Boston\n"
    leads_import(file=io.BytesIO(csv), file_name="a.csv")
    leads_import(file=io.BytesIO(csv), file_name="a.csv")  # the same file again changes nothing
    triggers_dispatch()

    assert list(Activity.objects.values_list("attributes", flat=True)) == [
        {"field": "country", "previous": "US", "new": "SE"}
    ]
    assert fired(to_se) == ["ann@example.com"]
    assert fired(to_de) == fired(city) == []


def test_the_admin_fires_person_is_created_and_data_value_changes(news, admin_client):
    created = follow_up_campaign(news, {"trigger": "person_created", "source": "admin"})
    changed = follow_up_campaign(news, {"trigger": "data_value_changes", "field": "first_name", "new": "Bo"})
    form = {"first_name": "Al", "email": "al@example.com", "mobile_phone": NUMBER, "lead_score": 0}
    response = admin_client.post(reverse("admin:smscampaigns_lead_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    lead = Lead.objects.get(email="al@example.com")
    admin_client.post(reverse("admin:smscampaigns_lead_change", args=[lead.pk]), {**form, "first_name": "Bo"})
    triggers_dispatch()

    assert fired(created) == fired(changed) == ["al@example.com"]


def test_a_vibes_sync_fires_person_is_created_for_a_keyword_subscriber(news, vibes_simulator, vibes_client):
    campaign = follow_up_campaign(news, {"trigger": "person_created", "source": "vibes_sync"})
    vibes_simulator.add_subscriber("101", NUMBER)
    subscribers_sync(vibes_list=news, client=vibes_client)
    triggers_dispatch()

    lead = Lead.objects.get(mobile_phone=NUMBER)
    assert TriggerFiring.objects.get(campaign=campaign).lead == lead
    # The flow ran for them at once: the sync subscribed them, so the SMS goes out.
    assert Subscription.objects.get(lead=lead).status == "subscribed"
    assert [m["to"] for m in vibes_simulator.messages()] == [NUMBER]
