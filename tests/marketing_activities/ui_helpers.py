"""Shared by the interface tests (test_views_*.py)."""

from django.urls import reverse

HTMX = {"HX-Request": "true"}


def url(name, *args):
    return reverse(f"marketing_activities:{name}", args=args)
