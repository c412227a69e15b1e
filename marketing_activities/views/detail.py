"""The pages of folders and programs: what they hold."""

from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from ..models import Folder, Program
from .common import HtmxHttpRequest, marketer_required, render_screen
from .tree_nodes import crumbs


@require_http_methods(["GET"])
@marketer_required("view_folder")
def folder(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    folder = get_object_or_404(Folder, pk=pk)
    context = {
        "folder": folder,
        "breadcrumbs": crumbs(folder.ancestors()),
        "subfolders": folder.children.all(),
        "programs": folder.programs.annotate(campaign_count=Count("campaigns", distinct=True)),
    }
    return render_screen(request, "marketing_activities/folder.html", context, selected=folder)


@require_http_methods(["GET"])
@marketer_required("view_program")
def program(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    program = get_object_or_404(Program.objects.select_related("folder"), pk=pk)
    context = {
        "program": program,
        "breadcrumbs": crumbs([*program.folder.ancestors(), program.folder]),
        "campaigns": program.campaigns.annotate(step_count=Count("flow_steps")),
        "sms_messages": program.sms_messages.all(),
    }
    return render_screen(request, "marketing_activities/program.html", context, selected=program)
