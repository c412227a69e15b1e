"""The smart list triggers about a person's record: "Person is Created" (source
optional: import, admin, Vibes sync) and "Data Value Changes" (field; new
and previous value optional, compared as text ignoring case)."""

from django.utils.translation import gettext_lazy

from .activities import CREATED_BY_ADMIN, CREATED_BY_IMPORT, CREATED_BY_VIBES_SYNC
from .models import Activity, Lead
from .smartlists import SmartListTrigger, TriggerConstraint, register_trigger

# The fields an import or the admin's form change, as the trigger offers them.
CHANGED_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "mobile_phone",
    "country",
    "city",
    "state",
    "lead_score",
    "lead_source",
    "blocklisted",
    "marketing_suspended",
)


def _fields():
    names = {field.name: field for field in Lead._meta.get_fields()}
    return [(name, str(names[name].verbose_name).capitalize()) for name in CHANGED_FIELDS if name in names]


class DataValueChanges(SmartListTrigger):
    def matches(self, values: dict, attributes: dict, *, campaign_id: int | None = None) -> bool:
        if str(attributes.get("field", "")) != values.get("field"):
            return False
        return all(
            not values.get(key) or str(attributes.get(key, "")).strip().casefold() == values[key].casefold()
            for key in ("new", "previous")
        )


register_trigger(
    SmartListTrigger(
        name="person_created",
        label=gettext_lazy("Person is Created"),
        activity_kind=Activity.Kind.PERSON_CREATED,
        constraints=(
            TriggerConstraint(
                "source",
                gettext_lazy("where the person came from"),
                lambda: [
                    (CREATED_BY_IMPORT, gettext_lazy("a list import")),
                    (CREATED_BY_ADMIN, gettext_lazy("the admin")),
                    (CREATED_BY_VIBES_SYNC, gettext_lazy("the Vibes sync")),
                ],
                required=False,
            ),
        ),
    )
)
register_trigger(
    DataValueChanges(
        name="data_value_changes",
        label=gettext_lazy("Data Value Changes"),
        activity_kind=Activity.Kind.DATA_VALUE_CHANGED,
        constraints=(
            TriggerConstraint("field", gettext_lazy("a field"), _fields),
            TriggerConstraint("new", gettext_lazy("the new value"), None, required=False),
            TriggerConstraint("previous", gettext_lazy("the previous value"), None, required=False),
        ),
    )
)
