"""What every screen shares: the permission checks and full-page-or-partial rendering."""

import functools
import re

from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy
from django_htmx.middleware import HtmxDetails

from ..permissions import require_permissions
from .tree_nodes import KINDS, tree_context


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def node_permission(action: str, kind: str) -> str:
    """The permission to view, add, change or delete a tree node of `kind` ("folder", "sms"…)."""
    if kind not in KINDS:
        raise Http404
    return f"marketing_activities.{get_permission_codename(action, KINDS[kind]._meta)}"


STAFF_ONLY = gettext_lazy(
    "Marketing Activities are for marketers (staff accounts). Ask an administrator for access."
)


def marketer_required(*permissions: str, post: tuple[str, ...] = ()):
    """Marketers are staff users with Django's permissions of this app.

    `permissions` are needed for every request to the view, and `post` for a
    POST as well: a GET shows, a POST changes. Each is a codename of this app
    ("view_smartcampaign"), or an action on the tree node the URL names
    ("change:kind" for /tree/<kind>/<pk>/rename/, "add:child_kind").
    LoginRequiredMiddleware already sent anonymous visitors to the login page.
    """

    def resolve(spec: str, kwargs: dict) -> str:
        if ":" in spec:
            action, _colon, argument = spec.partition(":")
            return node_permission(action, kwargs.get(argument))
        return f"marketing_activities.{spec}"

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_staff:
                raise PermissionDenied(STAFF_ONLY)
            needed = [*permissions, *(post if request.method == "POST" else ())]
            require_permissions(request.user, *(resolve(spec, kwargs) for spec in needed))
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


_PARTIAL_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# What decides between a whole page and a partial (and which partial).
HTMX_HEADERS = ("HX-Request", "HX-Target")


def wants_partial(request: HtmxHttpRequest) -> bool:
    # htmx: a history-cache miss asks for the page again and needs all of it.
    return bool(request.htmx) and not request.htmx.history_restore_request


def vary_on_htmx(response: HttpResponse) -> HttpResponse:
    """Tell caches that the response depends on the htmx headers: a page and its
    partial share one URL, and neither may be served for the other."""
    patch_vary_headers(response, HTMX_HEADERS)
    return response


def partial_for_target(template_name: str, request: HtmxHttpRequest, default: str) -> str:
    """The partial named like the element htmx will swap (`hx-target="#tab-panel"` →
    `#tab-panel`), when the template has one; otherwise `default`."""
    target = request.htmx.target or ""
    if _PARTIAL_NAME.match(target):
        try:
            get_template(f"{template_name}#{target}")
        except TemplateDoesNotExist:
            pass
        else:
            return target
    return default


def render_partial(
    request: HtmxHttpRequest, template_name: str, context: dict, *, status: int = 200
) -> TemplateResponse:
    """A part of a page (`"screen.html#partial"`, or a template of fragments) for htmx to swap in."""
    return vary_on_htmx(TemplateResponse(request, template_name, context, status=status))


def render_screen(
    request: HtmxHttpRequest,
    template_name: str,
    context: dict,
    *,
    selected=None,
    default_partial: str = "detail",
    status: int = 200,
) -> TemplateResponse:
    """The whole page (tree on the left, `selected` expanded and highlighted),
    or on htmx only the partial the request targets."""
    if wants_partial(request):
        name = partial_for_target(template_name, request, default_partial)
        return render_partial(request, f"{template_name}#{name}", context, status=status)
    context = {**tree_context(request, selected=selected), **context}
    return vary_on_htmx(TemplateResponse(request, template_name, context, status=status))
