"""The pages of folders and programs: what they hold, and a program's My Tokens."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from ..models import Folder, Program, ProgramToken
from ..program_tokens import program_token_delete, program_token_save
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


def _token_change(request: HtmxHttpRequest, program: Program) -> dict:
    """Add, change or delete one of the program's tokens, as the button pressed
    says; what was typed comes back with the problems when refused."""
    token = None
    if request.POST.get("token"):
        token = get_object_or_404(ProgramToken, pk=request.POST["token"], program=program)
    name, value = request.POST.get("name", ""), request.POST.get("value", "")
    try:
        if "delete_token" in request.POST and token:
            program_token_delete(token=token)
            messages.success(request, _("The token %(token)s was deleted.") % {"token": token})
        else:
            token = program_token_save(program=program, name=name, value=value, token=token)
            messages.success(request, _("The token %(token)s was saved.") % {"token": token})
    except ValidationError as error:
        return {
            "token_problems": error.messages,
            "token_typed": {"pk": token.pk if token else None, "name": name, "value": value},
        }
    return {}


@require_http_methods(["GET", "POST"])
@marketer_required("view_program", post=("change_program",))
def program(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    program = get_object_or_404(Program.objects.select_related("folder"), pk=pk)
    typed = {}
    if request.method == "POST":
        typed = _token_change(request, program)
        if not typed and not request.htmx:
            return redirect("marketing_activities:program", pk=program.pk)
    context = {
        "program": program,
        "breadcrumbs": crumbs([*program.folder.ancestors(), program.folder]),
        "campaigns": program.campaigns.annotate(step_count=Count("flow_steps")),
        "sms_messages": program.sms_messages.all(),
        "tokens": program.tokens.all(),
        "program_url": reverse("marketing_activities:program", args=[program.pk]),
        "token_example": "{{my.name}}",
        **typed,
    }
    # htmx: the token forms target #my-tokens, so only that card comes back.
    return render_screen(request, "marketing_activities/program.html", context, selected=program)
