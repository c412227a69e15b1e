"""The short links of tracked links: record the click, lead on to the address.

Open to everyone (the people who got the SMS have no login), and never an
error page of ours for a code that is wrong: a plain 404.
"""

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import DisallowedRedirect
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from ..links import link_by_code, link_click_record


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "links/not_found.html", status=404)


@login_not_required
@require_http_methods(["GET", "HEAD"])
def short_link(request: HttpRequest, code: str) -> HttpResponse:
    link = link_by_code(code)
    if link is None:
        return _not_found(request)
    try:
        response = HttpResponseRedirect(link.url)
    except DisallowedRedirect:  # only http(s) addresses are tracked; never a 500 all the same
        return _not_found(request)
    # HEAD: a link preview or checker asking where it leads, never a person.
    link_click_record(
        link=link, user_agent=request.headers.get("User-Agent", ""), preview=request.method == "HEAD"
    )
    # Each click must reach us: no cache may answer for us. The address may
    # carry the person's values: no referrer and no search engine gets it.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
