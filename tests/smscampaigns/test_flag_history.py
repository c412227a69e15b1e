"""R10: every change of blocklisted or marketing suspended is recorded with its source
and time (imports are in test_import_leads.py), and shown on the lead's admin page."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from smscampaigns.models import Lead, LeadFlagChange, flag_changes_by
from smscampaigns.services import leads_set_flag
from tests.smscampaigns.factories import LeadFactory

pytestmark = pytest.mark.django_db


def changes(**filters):
    return list(
        LeadFlagChange.objects.filter(**filters)
        .order_by("pk")
        .values_list("lead_id", "flag", "old_value", "new_value", "source")
    )


def test_the_blocklist_action_records_each_change_with_the_admin(admin_client, admin_user):
    leads = LeadFactory.create_batch(3)
    already = LeadFactory(blocklisted=True)
    LeadFlagChange.objects.all().delete()
    admin_client.post(
        reverse("admin:smscampaigns_lead_changelist"),
        {"action": "blocklist", ACTION_CHECKBOX_NAME: [leads[0].pk, leads[1].pk, already.pk]},
    )
    assert changes() == [
        (leads[0].pk, "blocklisted", False, True, "admin_action"),
        (leads[1].pk, "blocklisted", False, True, "admin_action"),
    ]
    assert {(c.user, c.note) for c in LeadFlagChange.objects.all()} == {(admin_user, "admin")}


def test_resuming_marketing_from_the_admin_is_recorded(admin_client):
    lead = LeadFactory(marketing_suspended=True)
    admin_client.post(
        reverse("admin:smscampaigns_lead_changelist"),
        {"action": "resume_marketing", ACTION_CHECKBOX_NAME: [lead.pk]},
    )
    assert changes(source="admin_action") == [(lead.pk, "marketing_suspended", True, False, "admin_action")]


def test_the_lead_form_records_the_change_with_the_user(admin_client, admin_user):
    lead = LeadFactory(blocklisted=True, email="bo@example.com", mobile_phone="+15551230001")
    response = admin_client.post(
        reverse("admin:smscampaigns_lead_change", args=[lead.pk]),
        {"first_name": lead.first_name, "last_name": lead.last_name, "email": lead.email,
         "mobile_phone": lead.mobile_phone, "country": "US", "lead_score": 0, "marketing_suspended": "on",
         "created_at_0": "2026-01-01", "created_at_1": "10:00"},
    )  # fmt: skip
    assert response.status_code == 302
    assert changes(source="admin_form") == [
        (lead.pk, "blocklisted", True, False, "admin_form"),
        (lead.pk, "marketing_suspended", False, True, "admin_form"),
    ]
    assert LeadFlagChange.objects.filter(source="admin_form", user=admin_user).count() == 2


def test_any_other_save_is_recorded_as_other():
    lead = LeadFactory()
    lead.blocklisted = True
    lead.save()
    lead.first_name = "Changed"
    lead.save()  # no flag changed: nothing recorded
    assert changes(lead=lead) == [(lead.pk, "blocklisted", False, True, "other")]


def test_a_stale_instance_records_the_change_from_what_is_stored():
    lead = LeadFactory()
    stale = Lead.objects.get(pk=lead.pk)
    Lead.objects.filter(pk=lead.pk).update(blocklisted=True)
    stale.first_name = "Stale"
    stale.save()  # writes blocklisted=False back: that is a change, and it is recorded
    assert changes(lead=lead) == [
        (lead.pk, "blocklisted", False, True, "other"),
        (lead.pk, "blocklisted", True, False, "other"),
    ]


def test_creating_a_blocklisted_lead_is_recorded_as_a_new_lead():
    lead = LeadFactory(blocklisted=True)
    LeadFactory()
    assert changes() == [(lead.pk, "blocklisted", None, True, "other")]


def test_saving_other_fields_only_records_nothing():
    lead = LeadFactory(blocklisted=True)
    LeadFlagChange.objects.all().delete()
    lead.blocklisted = False
    lead.save(update_fields=["first_name"])
    assert changes() == []
    assert Lead.objects.get(pk=lead.pk).blocklisted is True


def test_a_bulk_update_records_only_the_rows_it_changed():
    leads = LeadFactory.create_batch(3)
    Lead.objects.filter(pk=leads[0].pk).update(marketing_suspended=True)
    LeadFlagChange.objects.all().delete()
    with flag_changes_by(LeadFlagChange.Source.OTHER, note="nightly sync"):
        count = Lead.objects.filter(pk__in=[lead.pk for lead in leads]).update(marketing_suspended=True)
    assert count == 3
    assert changes() == [
        (leads[1].pk, "marketing_suspended", False, True, "other"),
        (leads[2].pk, "marketing_suspended", False, True, "other"),
    ]
    assert set(LeadFlagChange.objects.values_list("note", flat=True)) == {"nightly sync"}


def test_leads_set_flag_refuses_other_fields():
    with pytest.raises(ValueError):
        leads_set_flag(leads=Lead.objects.all(), flag="lead_score", value=True)


def test_the_lead_page_shows_who_changed_the_flags_and_from_where(admin_client):
    lead = LeadFactory()
    admin_client.post(
        reverse("admin:smscampaigns_lead_changelist"),
        {"action": "blocklist", ACTION_CHECKBOX_NAME: [lead.pk]},
    )
    content = admin_client.get(reverse("admin:smscampaigns_lead_change", args=[lead.pk])).content.decode()
    assert "<strong>Blocklisted</strong></td><td>admin action</td><td>no → yes (admin action, admin)" in content


def test_the_history_is_listed_in_the_admin(admin_client):
    lead = LeadFactory(blocklisted=True)
    response = admin_client.get(reverse("admin:smscampaigns_leadflagchange_changelist"))
    assert response.status_code == 200
    assert str(lead) in response.content.decode()
