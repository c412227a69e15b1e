"""What every screen shares: the staff check and full-page-or-partial rendering."""

import functools
import re

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.template.response import TemplateResponse
from django_htmx.middleware import HtmxDetails

from .tree_nodes import tree_context


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def staff_required(view):
    """Marketers are staff. LoginRequiredMiddleware already sent anonymous
    visitors to the login page, so a user without staff status gets a 403."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


_PARTIAL_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def wants_partial(request: HtmxHttpRequest) -> bool:
    # htmx: a history-cache miss asks for the page again and needs all of it.
    return bool(request.htmx) and not request.htmx.history_restore_request


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
        return TemplateResponse(request, f"{template_name}#{name}", context, status=status)
    context = {**tree_context(request, selected=selected), **context}
    return TemplateResponse(request, template_name, context, status=status)
