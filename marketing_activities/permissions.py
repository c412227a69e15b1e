"""The permissions of Marketing Activities beyond Django's view, add, change and delete.

Which screen and action needs which permission is listed in the README
("Permissions"); the views declare it with `marketer_required` (views/common.py),
the admin actions with `@admin.action(permissions=[...])`.
"""

from django.utils.translation import gettext_lazy

from smscampaigns.permissions import MissingPermission

# Running a campaign texts people: a permission of its own (SmartCampaign.Meta),
# apart from changing the campaign. Resuming a run and sending its uncertain
# calls again need it too, and so does activating a schedule.
RUN_CAMPAIGN = "marketing_activities.run_smartcampaign"
# A campaign's Results (and their CSV) are its runs.
VIEW_RUNS = "marketing_activities.view_campaignrun"

# What the permissions of this app's own allow, for the 403 page.
DOINGS = {RUN_CAMPAIGN: gettext_lazy("run smart campaigns")}


def require_permissions(user, *permissions: str) -> None:
    """Refuse (403, naming it) the first of `permissions` the user lacks."""
    for permission in permissions:
        if not user.has_perm(permission):
            raise MissingPermission(permission, doing=DOINGS.get(permission))
