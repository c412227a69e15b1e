"""What `manage.py vibes_simulator` starts the simulator with: the database's Vibes lists."""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from marketing_activities.demo import seed_demo
from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, SubscriptionFactory, VibesListFactory
from tests.vibes.simulated import SIM_COMPANY_KEY, SIM_PASSWORD, SIM_USERNAME, make_client
from vibes.demo import DEMO_LISTS
from vibes.management.commands.vibes_simulator import lists_from_db, subscribers_from_db
from vibes.models import Subscription
from vibes.simulator import VibesSimulator

pytestmark = pytest.mark.django_db


def started(**seed) -> VibesSimulator:
    return VibesSimulator(
        company_key=SIM_COMPANY_KEY, username=SIM_USERNAME, password=SIM_PASSWORD, **seed
    ).start()


def test_a_simulator_serves_only_the_lists_its_caller_gives_it():
    simulator = started()
    try:
        assert make_client(simulator.url).list_subscription_lists() == []
    finally:
        simulator.stop()


def test_the_command_serves_the_demo_lists_once_seed_demo_wrote_them():
    seed_demo(people=0)
    assert lists_from_db() == [
        {
            **demo_list,
            "acquisition_campaigns": [{**c, "status": "active"} for c in demo_list["acquisition_campaigns"]],
        }
        for demo_list in DEMO_LISTS
    ]


def test_the_command_serves_the_lists_and_campaigns_of_the_database_as_the_app_holds_them():
    news = VibesListFactory(vibes_id="301", name="News")
    AcquisitionCampaignFactory(vibes_id="AC-1", name="Web", vibes_list=news, keywords="NEWS, JOIN")
    AcquisitionCampaignFactory(
        vibes_id="AC-2",
        name="Spring",
        vibes_list=news,
        status="past",
        ends_at=datetime.datetime(2026, 5, 31, 22, tzinfo=datetime.UTC),
    )
    AcquisitionCampaignFactory(
        vibes_id="AC-3", name="Gone", vibes_list=news, gone_at=datetime.datetime.now(datetime.UTC)
    )
    VibesListFactory(vibes_id="302", name="Gone list", gone_at=datetime.datetime.now(datetime.UTC))
    simulator = started(lists=lists_from_db())
    try:
        client = make_client(simulator.url)
        assert [(info.id, info.name) for info in client.list_subscription_lists()] == [("301", "News")]
        campaigns = client.list_acquisition_campaigns("301")
        assert [(c.acquisition_id, c.name, c.status, c.keywords, c.end_date) for c in campaigns] == [
            ("AC-1", "Web", "active", ("NEWS", "JOIN"), ""),
            ("AC-2", "Spring", "past", (), "2026-05-31T22:00:00Z"),
        ]
    finally:
        simulator.stop()


def test_seed_from_db_subscribes_each_number_once_per_list_with_its_first_lead():
    news = VibesListFactory(vibes_id="301")
    first = LeadFactory(mobile_phone="+15551230001")
    LeadFactory(mobile_phone="+15551230001")
    SubscriptionFactory(lead=first, vibes_list=news)
    SubscriptionFactory(lead=LeadFactory(mobile_phone="+15551230001"), vibes_list=news)
    SubscriptionFactory(
        lead=LeadFactory(mobile_phone="+15551230002"), vibes_list=news, status=Subscription.Status.PENDING
    )
    assert subscribers_from_db() == [
        {"list_id": "301", "mdn": "+15551230001", "external_person_id": str(first.pk)}
    ]


def test_the_command_on_a_database_without_tables_says_to_migrate_first(tmp_path):
    env = {
        **os.environ,
        "ENV_FILE": str(tmp_path / "no.env"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "SECRET_KEY": "fresh-checkout-secret",
        "DEBUG": "true",
    }
    # A deadline on the process ending, not a measure: it stops at once.
    finished = subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "vibes_simulator", "--port", "0"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 1
    assert "run manage.py migrate first" in finished.stderr
    assert "Traceback" not in finished.stderr
