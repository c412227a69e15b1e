"""The tree's small forms: create, rename, move and delete nodes.

htmx loads each form into a slot under the node's row; without htmx the same
URL is a page of its own. Success leaves the form for the changed node's page
(a full load, so the tree is rendered again, open down to that node).
"""

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from .. import services
from ..forms import FolderMoveForm, NameForm, ProgramMoveForm, SmsMessageCreateForm, add_service_errors
from .common import HtmxHttpRequest, marketer_required, render_screen
from .tree_nodes import KINDS, node_key, node_url

TEMPLATE = "marketing_activities/tree_form.html"

# Which kinds of node each node may hold (None: the top level).
CHILD_KINDS = {None: ("folder",), "folder": ("folder", "program"), "program": ("campaign", "sms")}

CREATE_TITLES = {
    "folder": gettext_lazy("New folder"),
    "program": gettext_lazy("New program"),
    "campaign": gettext_lazy("New smart campaign"),
    "sms": gettext_lazy("New SMS message"),
}


def _node_or_404(kind: str, pk: int):
    if kind not in KINDS:
        raise Http404
    return get_object_or_404(KINDS[kind], pk=pk)


def _leave_for(request: HtmxHttpRequest, url: str) -> HttpResponse:
    # htmx: a client redirect loads the whole page, tree included.
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _page_of(obj) -> str:
    if obj is None:
        return reverse("marketing_activities:index")
    return node_url(node_key(obj).split("-")[0], obj.pk)


def _render(
    request,
    form,
    *,
    title: str,
    node=None,
    submit: str,
    danger: bool = False,
    blocked: bool = False,
    selected=None,
):
    context = {
        "form": form,
        "title": title,
        "node": node,
        "node_key": node_key(node) if node is not None else "top",
        "submit_label": submit,
        "danger": danger,
        "blocked": blocked,
        "cancel_url": _page_of(selected),
    }
    return render_screen(request, TEMPLATE, context, selected=selected, default_partial="tree-form")


@require_http_methods(["GET", "POST"])
@marketer_required("add:child_kind")
def node_create(request: HtmxHttpRequest, child_kind: str, kind: str | None = None, pk: int | None = None):
    if child_kind not in CHILD_KINDS.get(kind, ()):
        raise Http404
    parent = _node_or_404(kind, pk) if kind else None
    form_class = SmsMessageCreateForm if child_kind == "sms" else NameForm
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if child_kind == "folder":
                node = services.folder_create(name=data["name"], parent=parent)
            elif child_kind == "program":
                node = services.program_create(name=data["name"], folder=parent)
            elif child_kind == "campaign":
                node = services.campaign_create(name=data["name"], program=parent)
            else:
                node = services.sms_message_create(name=data["name"], program=parent, text=data["text"])
        except ValidationError as error:
            add_service_errors(form, error, default_field="name")
        else:
            return _leave_for(request, _page_of(node))
    title = CREATE_TITLES[child_kind]
    if parent is not None:
        title = _("%(title)s in “%(parent)s”") % {"title": title, "parent": parent.name}
    return _render(request, form, title=title, node=parent, submit=_("Create"), selected=parent)


@require_http_methods(["GET", "POST"])
@marketer_required("change:kind")
def node_rename(request: HtmxHttpRequest, kind: str, pk: int):
    node = _node_or_404(kind, pk)
    form = NameForm(request.POST or None, initial={"name": node.name})
    if request.method == "POST" and form.is_valid():
        try:
            services.node_rename(node=node, name=form.cleaned_data["name"])
        except ValidationError as error:
            add_service_errors(form, error, default_field="name")
        else:
            return _leave_for(request, _page_of(node))
    title = _("Rename “%(name)s”") % {"name": node.name}
    return _render(request, form, title=title, node=node, submit=_("Rename"), selected=node)


@require_http_methods(["GET", "POST"])
@marketer_required("change:kind")
def node_move(request: HtmxHttpRequest, kind: str, pk: int):
    if kind not in ("folder", "program"):
        raise Http404
    node = _node_or_404(kind, pk)
    data = request.POST or None
    form = FolderMoveForm(data, folder=node) if kind == "folder" else ProgramMoveForm(data, program=node)
    if request.method == "POST" and form.is_valid():
        try:
            if kind == "folder":
                services.folder_move(folder=node, parent=form.cleaned_data["parent"])
            else:
                services.program_move(program=node, folder=form.cleaned_data["folder"])
        except ValidationError as error:
            add_service_errors(form, error, default_field="parent" if kind == "folder" else "folder")
        else:
            return _leave_for(request, _page_of(node))
    title = _("Move “%(name)s”") % {"name": node.name}
    return _render(request, form, title=title, node=node, submit=_("Move"), selected=node)


def _container(node):
    """The folder or program holding `node` (None for a top-level folder): where to go after deleting it."""
    for name in ("parent", "folder", "program"):
        if hasattr(node, name):
            return getattr(node, name)
    return None


DELETERS = {
    "folder": lambda node: services.folder_delete(folder=node),
    "program": lambda node: services.program_delete(program=node),
    "campaign": lambda node: services.campaign_delete(campaign=node),
    "sms": lambda node: services.sms_message_delete(message=node),
}


@require_http_methods(["GET", "POST"])
@marketer_required("delete:kind")
def node_delete(request: HtmxHttpRequest, kind: str, pk: int):
    node = _node_or_404(kind, pk)
    # Nothing to type: the form carries the reason a node cannot be deleted, if any.
    form = NameForm({"name": node.name})
    form.is_valid()
    if request.method == "POST":
        parent = _container(node)
        try:
            DELETERS[kind](node)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return _leave_for(request, _page_of(parent))
    else:
        # Say why before the click, and offer no Delete to click.
        blocker = services.node_delete_blocker(node=node)
        if blocker:
            form.add_error(None, blocker)
    if form.non_field_errors():
        title = _("“%(name)s” cannot be deleted") % {"name": node.name}
        return _render(
            request, form, title=title, node=node, submit="", danger=True, blocked=True, selected=node
        )
    title = _("Delete “%(name)s”?") % {"name": node.name}
    return _render(request, form, title=title, node=node, submit=_("Delete"), danger=True, selected=node)
