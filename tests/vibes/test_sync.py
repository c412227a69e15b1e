"""vibes_sync against the simulator: lists, acquisition campaigns, subscriptions."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.smscampaigns.factories import LeadFactory
from tests.vibes.factories import AcquisitionCampaignFactory, SubscriptionFactory, VibesListFactory
from vibes.models import AcquisitionCampaign, Subscription, SubscriptionChange, VibesList
from vibes.sync import vibes_sync

pytestmark = pytest.mark.django_db


def test_sync_fills_the_demo_lists_and_campaigns(vibes_client):
    report = vibes_sync(client=vibes_client)
    assert dict(VibesList.objects.values_list("vibes_id", "name")) == {
        "101": "SMS Newsletter",
        "102": "VIP Offers",
    }
    web = AcquisitionCampaign.objects.get(vibes_id="AC-NEWS-WEB")
    assert (web.name, web.vibes_list.vibes_id, web.status, web.keywords) == (
        "Newsletter web sign-up",
        "101",
        "active",
        "NEWS",
    )
    assert AcquisitionCampaign.objects.filter(gone_at__isnull=True).count() == 3
    assert (report.lists_created, report.campaigns_created) == (2, 3)


def test_sync_twice_changes_nothing(vibes_client):
    vibes_sync(client=vibes_client)
    report = vibes_sync(client=vibes_client)
    assert (
        report.lists_created,
        report.lists_updated,
        report.campaigns_created,
        report.campaigns_updated,
    ) == (0, 0, 0, 0)


def test_lists_and_campaigns_gone_from_vibes_are_marked_not_deleted(vibes_client):
    old = VibesListFactory(vibes_id="900", name="Old list")
    old_campaign = AcquisitionCampaignFactory(vibes_id="AC-OLD", vibes_list=old)
    report = vibes_sync(client=vibes_client)
    old.refresh_from_db()
    old_campaign.refresh_from_db()
    assert old.gone_at is not None and old_campaign.gone_at is not None
    assert (report.lists_gone, report.campaigns_gone) == (1, 1)


def test_a_list_back_in_vibes_is_no_longer_gone(vibes_client):
    VibesListFactory(vibes_id="101", name="Renamed meanwhile", gone_at=timezone.now())
    vibes_sync(client=vibes_client)
    news = VibesList.objects.get(vibes_id="101")
    assert (news.name, news.gone_at) == ("SMS Newsletter", None)


def test_sync_subscriptions_mirrors_vibes_without_inventing_rows(vibes_client, vibes_simulator):
    vibes_sync(client=vibes_client)
    news = VibesList.objects.get(vibes_id="101")
    subscribed_in_vibes = LeadFactory()
    gone_from_vibes = SubscriptionFactory(vibes_list=news, status="subscribed").lead
    long_pending = SubscriptionFactory(
        vibes_list=news, status="pending", pending_since=timezone.now() - timedelta(days=2)
    ).lead
    just_pending = SubscriptionFactory(vibes_list=news, status="pending", pending_since=timezone.now()).lead
    never_on_a_list = LeadFactory()
    LeadFactory(mobile_phone="")  # no number: never asked about
    vibes_simulator.add_subscriber(
        "101", subscribed_in_vibes.mobile_phone, external_person_id=str(subscribed_in_vibes.pk)
    )

    progress = []
    report = vibes_sync(
        client=vibes_client, subscriptions=True, progress=lambda sync, done, total: progress.append(done)
    )

    statuses = dict(Subscription.objects.filter(vibes_list=news).values_list("lead_id", "status"))
    assert statuses == {
        subscribed_in_vibes.pk: "subscribed",
        gone_from_vibes.pk: "unsubscribed",
        long_pending.pk: "unsubscribed",
        just_pending.pk: "pending",
    }
    assert not Subscription.objects.filter(lead=never_on_a_list).exists()
    assert [(s.vibes_list.vibes_id, s.changed) for s in report.subscriber_syncs] == [("101", 3), ("102", 0)]
    assert progress == [1, 2]  # one subscriber read, then two numbers checked
    assert set(SubscriptionChange.objects.values_list("source", flat=True)) == {"sync"}


def test_sync_stays_within_the_rate_limit(vibes_simulator, settings):
    from tests.vibes.simulated import make_client
    from vibes.ratelimit import RateLimiter

    vibes_simulator.set_faults(rate_limit=40)
    client = make_client(vibes_simulator.url, rate_limiter=RateLimiter(35))
    vibes_sync(client=client)
    news = VibesList.objects.get(vibes_id="101")
    for lead in LeadFactory.create_batch(20):
        SubscriptionFactory(lead=lead, vibes_list=news)  # each one checked: Vibes does not list them
    for n in range(30):
        vibes_simulator.add_subscriber("101", f"+1555987{n:04d}")
    vibes_sync(client=client, subscriptions=True, page_size=1)
    stats = vibes_simulator.stats()
    assert stats["requests"] == 2 * 3 + (30 + 1) + 1 + 20  # lists twice, pages of 101 and 102, checks
    assert stats["by_status"].get("429", 0) == 0
    assert stats["max_requests_per_second"] <= 35


def test_the_command_reports_what_it_did(vibes_simulator, capsys):
    call_command("vibes_sync")
    assert "2 new" in capsys.readouterr().out
    assert VibesList.objects.count() == 2


def test_the_command_with_subscriptions(vibes_simulator, capsys):
    lead = LeadFactory()
    vibes_simulator.add_subscriber("102", lead.mobile_phone)
    call_command("vibes_sync", "--subscriptions", verbosity=0)
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("SMS Newsletter: Done. Subscribers read: 0;")
    assert out[2].startswith("VIP Offers: Done. Subscribers read: 1; calls to Vibes: 2. Leads linked: 1,")


def test_the_command_says_clearly_when_vibes_is_unreachable(settings):
    settings.VIBES_PLATFORM_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.VIBES_CONNECT_TIMEOUT = 0.5
    from vibes import conf

    conf._client = conf.build_client(max_attempts=1)
    with pytest.raises(CommandError) as caught:
        call_command("vibes_sync")
    assert "unreachable" in str(caught.value)
    assert "127.0.0.1:9" in str(caught.value)
    assert not VibesList.objects.exists()


def test_the_command_says_clearly_when_credentials_are_refused(vibes_simulator, settings):
    settings.VIBES_PASSWORD = "wrong"
    with pytest.raises(CommandError) as caught:
        call_command("vibes_sync")
    assert "credentials" in str(caught.value)


def test_the_admin_action_syncs_the_lists(vibes_simulator, staff_client):
    VibesListFactory(vibes_id="101", name="Old name")
    response = staff_client.post(
        "/admin/vibes/vibeslist/",
        {"action": "sync_from_vibes", "_selected_action": [VibesList.objects.get().pk]},
        follow=True,
    )
    assert "Vibes lists: 1 new, 1 updated, 0 gone." in response.content.decode()
    assert VibesList.objects.get(vibes_id="101").name == "SMS Newsletter"
    assert VibesList.objects.count() == 2
