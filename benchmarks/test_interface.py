"""Median server time (Django test client) of the interface's hottest requests on a big tree.

Target: expanding a folder and rendering the Flow tab each under 50 ms median.
"""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
TARGET_SECONDS = 0.050


def run(benchmark, client, path, headers=None, status=200):
    def request():
        response = client.get(path, headers=headers or {})
        assert response.status_code == status
        return response

    benchmark.pedantic(request, rounds=30, warmup_rounds=3, iterations=1)
    return benchmark.stats.stats.median


def test_data_size(big_tree):
    assert big_tree["folders"] == 500
    assert big_tree["campaigns"] == 10_000


def test_expand_a_folder(benchmark, big_tree, marketer_client):
    path = reverse("marketing_activities:node_children", args=["folder", big_tree["top"].pk])
    assert run(benchmark, marketer_client, path, HTMX) < TARGET_SECONDS


def test_expand_a_program(benchmark, big_tree, marketer_client):
    path = reverse("marketing_activities:node_children", args=["program", big_tree["program"].pk])
    assert run(benchmark, marketer_client, path, HTMX) < TARGET_SECONDS


def test_flow_tab_partial(benchmark, big_tree, marketer_client):
    path = reverse("marketing_activities:campaign_flow", args=[big_tree["long_flow"].pk])
    assert run(benchmark, marketer_client, path, {**HTMX, "HX-Target": "tab-panel"}) < TARGET_SECONDS


def test_flow_tab_full_page(benchmark, big_tree, marketer_client):
    """The whole page: the tree open down to the campaign, and the ten-step flow."""
    path = reverse("marketing_activities:campaign_flow", args=[big_tree["long_flow"].pk])
    assert run(benchmark, marketer_client, path) < TARGET_SECONDS


def test_tree_search(benchmark, big_tree, marketer_client):
    path = reverse("marketing_activities:index") + "?q=Team 07"
    run(benchmark, marketer_client, path, {**HTMX, "HX-Target": "tree"})
