"""The subscriber sync benchmark's data is what it claims: the list's
subscribers in Vibes a third each (subscribed by the app, by keyword with a
lead's number, by keyword with a new number), and the stale local ones."""

import pytest

from benchmarks import sync
from smscampaigns.models import Lead
from vibes.models import Subscription


@pytest.mark.django_db
def test_the_subscribers_are_a_third_each_and_the_stale_ones_local_only():
    vibes_list, subscribers = sync.build(leads=3000, subscribers=900, stale=12)
    numbers = set(Lead.objects.exclude(mobile_phone="").values_list("mobile_phone", flat=True))
    through_app = [s for s in subscribers if "external_person_id" in s]
    by_keyword = [s for s in subscribers if "external_person_id" not in s and s["mdn"] in numbers]
    new = [s for s in subscribers if s["mdn"] not in numbers]
    assert len(subscribers) == len({s["mdn"] for s in subscribers}) == 900
    assert len(through_app) == len(by_keyword) == len(new) == 300
    local = Subscription.objects.filter(vibes_list=vibes_list, status="subscribed")
    assert local.count() == 300 + 12
    in_vibes = {s["mdn"] for s in subscribers}
    assert local.exclude(lead__mobile_phone__in=in_vibes).count() == 12
    assert {str(pk) for pk in local.values_list("lead_id", flat=True)} >= {
        s["external_person_id"] for s in through_app
    }
