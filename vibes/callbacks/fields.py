"""Reading the fields of a callback's payload.

Vibes shapes a callback's body like the matching API resource (`person`,
`subscription_list`, `opt_in_date`, `opt_out_date`, `opt_out_reason`,
`mobile_phone.mdn`, `external_person_id`), and a field may be missing or of
another type: each reader answers "" or None rather than fail.
"""

from datetime import datetime

from smscampaigns.models import Lead
from smscampaigns.phones import normalize_phone_or_blank

from ..models import AcquisitionCampaign, VibesList
from ..times import vibes_time


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def text(value) -> str:
    return value if isinstance(value, str) else ""


def code(value) -> str:
    """A code or id, which may come as a JSON number."""
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def first_text(payload, fields) -> str:
    """The first of these fields that holds a word or a number."""
    for field in fields:
        value = payload.get(field)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return ""


def mdn(payload) -> str:
    """The event's mobile number in E.164 form, or ""."""
    raw = as_dict(payload.get("mobile_phone")).get("mdn") or as_dict(
        as_dict(payload.get("person")).get("mobile_phone")
    ).get("mdn")
    raw = raw or payload.get("mdn") or payload.get("to") or ""
    if not isinstance(raw, str):
        return ""
    return normalize_phone_or_blank(raw) or ""


def external_person_id(payload) -> str:
    value = (
        payload.get("external_person_id") or as_dict(payload.get("person")).get("external_person_id") or ""
    )
    return str(value).strip()


def named_lead(payload) -> Lead | None:
    """The lead the external person id names (our lead id), if any: a hint, never more (R9)."""
    external_id = external_person_id(payload)
    if not (external_id.isascii() and external_id.isdigit() and len(external_id) <= 18):
        return None
    return Lead.objects.filter(pk=int(external_id)).only("pk", "mobile_phone").first()


def person_key(payload) -> str:
    person = as_dict(payload.get("person"))
    return str(person.get("person_key") or person.get("id") or "")[:64]


def event_time(value, event) -> datetime | None:
    """The event's own time, never later than its arrival: a date in the future
    (a clock ahead, a bad payload) must not outrank the real changes after it."""
    moment = vibes_time(value)
    return None if moment is None else min(moment, event.received_at)


def vibes_list(payload) -> VibesList | None:
    list_id = as_dict(payload.get("subscription_list")).get("id") or payload.get("subscription_list_id")
    if list_id not in (None, ""):
        return VibesList.objects.filter(vibes_id=str(list_id)).first()
    campaign = acquisition_campaign(payload)
    return campaign.vibes_list if campaign else None


def acquisition_campaign(payload) -> AcquisitionCampaign | None:
    acquisition_id = as_dict(payload.get("acquisition_campaign")).get("acquisition_id") or payload.get(
        "acquisition_id"
    )
    if acquisition_id in (None, ""):
        return None
    return (
        AcquisitionCampaign.objects.select_related("vibes_list").filter(vibes_id=str(acquisition_id)).first()
    )
