"""Shared by the interface tests (test_views_*.py)."""

import re

from django.test import TestCase, override_settings
from django.urls import reverse

HTMX = {"HX-Request": "true"}


def url(name, *args):
    return reverse(f"marketing_activities:{name}", args=args)


def run_now_counted(client, campaign) -> str:
    """The Schedule tab's Run now confirmation once its count ran (here, as
    the counts request's transaction commits), as its poll then shows it."""
    headers = {**HTMX, "HX-Target": "run-now"}
    with override_settings(RUNNER_BACKGROUND="inline"), TestCase.captureOnCommitCallbacks(execute=True):
        started = client.get(url("campaign_run_now", campaign.pk) + "?count=exact", headers=headers)
    count = re.search(r"\?counting=(\d+)", started.content.decode()).group(1)
    return client.get(
        url("campaign_run_now", campaign.pk) + f"?counting={count}", headers=headers
    ).content.decode()
