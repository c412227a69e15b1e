import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from smscampaigns.models import Lead
from tests.smscampaigns.factories import LeadFactory, SmartListFactory

pytestmark = pytest.mark.django_db


def test_changelist_links_to_the_import(admin_client):
    response = admin_client.get(reverse("admin:smscampaigns_lead_changelist"))
    assert reverse("admin:smscampaigns_lead_import") in response.content.decode()


def test_blocklist_action(admin_client):
    leads = LeadFactory.create_batch(3)
    response = admin_client.post(
        reverse("admin:smscampaigns_lead_changelist"),
        {"action": "blocklist", ACTION_CHECKBOX_NAME: [leads[0].pk, leads[1].pk]},
        follow=True,
    )
    assert "2 people blocklisted." in response.content.decode()
    assert list(Lead.objects.filter(blocklisted=True).order_by("pk")) == leads[:2]


def test_lead_form_rejects_an_invalid_number_and_keeps_the_input(admin_client):
    response = admin_client.post(
        reverse("admin:smscampaigns_lead_add"),
        {
            "first_name": "Anna",
            "email": "anna@example.com",
            "mobile_phone": "12345",
            "lead_score": 0,
            "created_at_0": "2026-01-01",
            "created_at_1": "10:00",
        },
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "wrong number of digits" in content
    assert 'value="Anna"' in content
    assert not Lead.objects.exists()


def test_smart_list_admin_shows_validation_errors_not_a_500(admin_client):
    smart_list = SmartListFactory()
    response = admin_client.post(
        reverse("admin:smscampaigns_smartlist_change", args=[smart_list.pk]),
        {
            "name": smart_list.name,
            "definition": '{"logic": "1 or 2", "rules": [{"field": "country", "op": "is", "value": "US"}]}',
        },
    )
    assert response.status_code == 200
    assert "there is no rule 2" in response.content.decode()


def test_smart_list_admin_shows_how_many_people_qualify(admin_client):
    LeadFactory.create_batch(2, country="US")
    smart_list = SmartListFactory()
    response = admin_client.get(reverse("admin:smscampaigns_smartlist_change", args=[smart_list.pk]))
    assert "2 people" in response.content.decode()
