"""Refusals that say which permission is missing, for the interface and the admin alike.

A refusal is a `MissingPermission` (a `PermissionDenied`), so Django answers it
with `templates/403.html`, which shows its message: what the user cannot do and
the permission as the admin's Users and Groups pages list it, so whoever
grants it knows what to tick.
"""

from django.apps import apps
from django.contrib.admin.utils import model_format_dict
from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# What Django's four default permissions let a user do, named by the model's plural.
DEFAULT_DOINGS = {
    "view": gettext_lazy("see %(models)s"),
    "add": gettext_lazy("create %(models)s"),
    "change": gettext_lazy("change %(models)s"),
    "delete": gettext_lazy("delete %(models)s"),
}


def permission_label(permission: str) -> str:
    """“Marketing Activities | smart campaign | Can run smart campaign” for
    "marketing_activities.run_smartcampaign": the words of the admin's permission lists."""
    app_label, _dot, codename = permission.partition(".")
    found = (
        Permission.objects.select_related("content_type")
        .filter(content_type__app_label=app_label, codename=codename)
        .first()
    )
    return str(found) if found is not None else permission


def default_doing(permission: str) -> str | None:
    """“see smart campaigns” for marketing_activities.view_smartcampaign; None
    for a permission of a model's own (say what it allows where it is checked)."""
    app_label, _dot, codename = permission.partition(".")
    action, _sep, model_name = codename.partition("_")
    if action not in DEFAULT_DOINGS:
        return None
    try:
        opts = apps.get_model(app_label, model_name)._meta
    except LookupError:
        return None
    if codename != get_permission_codename(action, opts):
        return None
    return DEFAULT_DOINGS[action] % {"models": opts.verbose_name_plural}


class MissingPermission(PermissionDenied):
    """A refusal naming the permission that is missing and what it would allow
    (`doing`, an infinitive: "run smart campaigns"; Django's four say it themselves)."""

    def __init__(self, permission: str, *, doing: str | None = None):
        self.permission = permission
        label = permission_label(permission)
        doing = doing or default_doing(permission)
        if doing:
            message = _("You cannot %(doing)s: that needs the permission “%(permission)s”.") % {
                "doing": doing,
                "permission": label,
            }
        else:
            message = _("That needs the permission “%(permission)s”.") % {"permission": label}
        ask = _("Ask an administrator to give it to you or to one of your groups.")
        super().__init__(f"{message} {ask}")


class ActionPermissionsAdmin:
    """For a ModelAdmin: a refused list page or action of the list page answers
    403 naming the missing permission. Django would answer a refused action
    with the list page and "No action selected.", which reads as if the click
    was lost.

    An action's permissions are the `has_<name>_permission` methods it names
    (`@admin.action(permissions=[...])`); `permission_for` says which
    permission each one checks, for the message.
    """

    def permission_for(self, name: str) -> str:
        """The permission behind `has_<name>_permission`: the model's own by default."""
        return f"{self.opts.app_label}.{get_permission_codename(name, self.opts)}"

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise MissingPermission(self.permission_for("view"))
        if request.method == "POST" and "action" in request.POST:
            self._refuse_unavailable_action(request)
        return super().changelist_view(request, extra_context)

    def _refuse_unavailable_action(self, request) -> None:
        # The action of the form whose button was pushed, as response_action reads it.
        try:
            name = request.POST.getlist("action")[int(request.POST.get("index", 0))]
        except (IndexError, ValueError):
            return
        if not name or name in self.get_actions(request):
            return
        for action in self._get_base_actions():
            if action.name != name:
                continue
            for permission in getattr(action.func, "allowed_permissions", ()):
                if not getattr(self, f"has_{permission}_permission")(request):
                    description = action.description % model_format_dict(self.opts)
                    doing = _("use the action “%(action)s”") % {"action": description}
                    raise MissingPermission(self.permission_for(permission), doing=doing)
