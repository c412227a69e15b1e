"""The SMS activity filters typed as JSON in the smart list admin: checked as in the tab."""

import json

import pytest

from smscampaigns.models import SmartList
from tests.marketing_activities.factories import SmsMessageFactory
from tests.smscampaigns.factories import SmartListFactory
from tests.smscampaigns.test_admin_smart_lists import change

pytestmark = pytest.mark.django_db


def test_an_activity_filter_typed_as_json_is_saved(admin_client):
    smart_list = SmartListFactory()
    welcome = SmsMessageFactory()
    definition = {
        "logic": "1 and not 2",
        "rules": [
            {"field": "was_sent_sms", "op": "is", "value": welcome.pk, "when": "in past", "days": 7},
            {"field": "replied_to_sms", "op": "is any", "reply": "contains", "text": "stop"},
        ],
    }
    response = change(admin_client, smart_list, json.dumps(definition))
    assert response.status_code == 302
    assert SmartList.objects.get(pk=smart_list.pk).definition == definition


def test_a_bad_activity_constraint_typed_as_json_gets_its_message_and_nothing_is_saved(admin_client):
    smart_list = SmartListFactory()
    before = smart_list.definition
    definition = {
        "logic": "all",
        "rules": [
            {
                "field": "sms_bounced",
                "op": "is any",
                "when": "between",
                "date": "2026-05-01",
                "end_date": "2026-04-01",
            }
        ],
    }
    response = change(admin_client, smart_list, json.dumps(definition))
    assert response.status_code == 200
    assert "Rule 1: the last day, 2026-04-01, is before the first, 2026-05-01." in response.content.decode()
    assert SmartList.objects.get(pk=smart_list.pk).definition == before
