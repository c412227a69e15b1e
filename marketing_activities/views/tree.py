"""The tree pane: the start page, expanding and collapsing nodes, searching."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods, require_POST

from .. import services
from .common import (
    HtmxHttpRequest,
    marketer_required,
    node_permission,
    render_partial,
    render_screen,
    wants_partial,
)
from .tree_edit import CHILD_KINDS
from .tree_nodes import (
    EXPANDABLE,
    KINDS,
    Node,
    children_of,
    expanded_keys,
    flatten,
    node_url,
    remember_expanded,
    tree_context,
    tree_editable,
)

LAYOUT = "marketing_activities/layout.html"


@require_http_methods(["GET"])
@marketer_required("view_folder")
def index(request: HtmxHttpRequest) -> HttpResponse:
    # htmx: the search box swaps only the tree (`?q=` filters it); other
    # requests get the welcome pane.
    if wants_partial(request) and request.htmx.target == "tree":
        return render_partial(request, f"{LAYOUT}#tree", tree_context(request))
    return render_screen(request, "marketing_activities/index.html", {})


def _expandable_node(kind: str, pk: int) -> Node:
    if kind not in EXPANDABLE:
        raise Http404
    obj = get_object_or_404(KINDS[kind].objects.only("id", "name"), pk=pk)
    return Node(kind=kind, pk=obj.pk, name=obj.name)


@require_http_methods(["GET"])
@marketer_required("view:kind")
def node_children(request: HtmxHttpRequest, kind: str, pk: int) -> HttpResponse:
    """Expand a node: its row with its children (loaded now, not before), and
    remember it as expanded so a reload shows it open."""
    node = _expandable_node(kind, pk)
    remember_expanded(request, add=[node.key])
    if not wants_partial(request):
        # Without htmx the toggle is a plain link: show the page again, expanded.
        return render_screen(request, "marketing_activities/index.html", {})
    node.expanded = True
    node.children = children_of(kind, pk, expanded=expanded_keys(request))
    context = {"tree_items": flatten([node]), "tree_editable": tree_editable(request.user)}
    return render_partial(request, "marketing_activities/_tree_nodes.html", context)


@require_POST
@marketer_required("view:kind")
def node_collapse(request: HtmxHttpRequest, kind: str, pk: int) -> HttpResponse:
    node = _expandable_node(kind, pk)
    remember_expanded(request, remove=[node.key])
    if not request.htmx:
        return redirect("marketing_activities:index")
    context = {"tree_items": flatten([node]), "tree_editable": tree_editable(request.user)}
    return render_partial(request, "marketing_activities/_tree_nodes.html", context)


@require_http_methods(["GET"])
@marketer_required("view:kind")
def node_menu(request: HtmxHttpRequest, kind: str, pk: int) -> HttpResponse:
    """The items of a node's ⋯ menu, loaded when the menu is first opened."""
    if kind not in KINDS:
        raise Http404
    obj = get_object_or_404(KINDS[kind].objects.only("id", "name"), pk=pk)
    if not request.htmx:
        return redirect(node_url(kind, obj.pk))
    node = Node(kind=kind, pk=obj.pk, name=obj.name)
    # Only what this user may do is offered; the views of each item check again.
    may = {action: request.user.has_perm(node_permission(action, kind)) for action in ("change", "delete")}
    for child_kind in CHILD_KINDS.get(kind, ()):
        may[f"add_{child_kind}"] = request.user.has_perm(node_permission("add", child_kind))
    context = {"node": node, "may": may, "may_anything": any(may.values())}
    if may["delete"]:
        # Asked now, not after a click on Delete: the menu says why instead of offering it.
        context["delete_blocker"] = services.node_delete_blocker(node=obj)
    return render_partial(request, "marketing_activities/_tree_nodes.html#tree-menu", context)
