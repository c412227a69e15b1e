"""Vibes' callbacks past the middleware that serves people.

At 500 callbacks a second every millisecond of a web worker counts, and
most of the middleware does nothing for Vibes: no session, no user, no
CSRF token (the view is exempt), no login (it proves itself with Basic
credentials), no messages, no htmx, no frame options for a JSON answer, no
static files. Placed after SecurityMiddleware (its redirect to HTTPS and
its headers still apply), this one answers the callbacks URL with the view
itself; every other path goes on as before.
"""

from django.urls import NoReverseMatch, reverse
from django.utils import translation

from .views import callbacks


class CallbacksMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            # Asked each time (the resolver caches it): a URL configuration may leave Vibes out.
            path = reverse("vibes:callbacks", urlconf=getattr(request, "urlconf", None))
        except NoReverseMatch:
            path = None
        if request.path_info != path:
            return self.get_response(request)
        # What LocaleMiddleware would have done: a thread serves people too, and
        # an answer to Vibes must not come in the language of the last person served.
        translation.activate(translation.get_language_from_request(request))
        response = callbacks(request)
        response.headers["Content-Length"] = str(len(response.content))
        return response
