"""The one page Vibes itself calls: POST /vibes/callbacks/."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .callbacks import callback_credentials_valid, callback_receive, callback_source_allowed


# Vibes cannot log in or send a CSRF token: it proves itself with Basic
# credentials and, optionally, its source address. Only this view is exempt.
@csrf_exempt
@login_not_required
@require_POST
def callbacks(request: HttpRequest) -> JsonResponse:
    if not callback_source_allowed(request.META.get("REMOTE_ADDR", "")):
        return JsonResponse({"error": _("This address may not post Vibes callbacks.")}, status=403)
    if not callback_credentials_valid(request.headers.get("Authorization", "")):
        response = JsonResponse({"error": _("Vibes callback credentials are missing or wrong.")}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="Vibes callbacks", charset="UTF-8"'
        return response
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse(
            {
                "error": _("The body is larger than %(limit)d bytes.")
                % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
            },
            status=400,
        )
    result = callback_receive(body=body, headers=request.headers, reference=request.GET.get("ref", ""))
    return JsonResponse(result.body, status=result.status)
