"""The subscriber sync benchmark: N leads, S subscribers on one list, against the simulator.

`build` writes the leads and their local subscriptions, and returns the
list's subscribers in Vibes, a third each: people the app subscribed (their
leads subscribed locally, Vibes knows their lead id), keyword subscribers
whose number a lead has (unknown to the app), and keyword subscribers whose
number no lead has (to be created). Besides, `stale` leads are subscribed
locally but gone from Vibes (opt-outs whose callbacks were missed).
`measure` seeds the simulator in its own process with them and syncs twice:
the first brings everything in line, the second finds everything in line
(a daily sync). Calls are counted by the simulator. `manage.py bench_sync`
runs it on a scratch database.
"""

import math
import random
import sys
import time

import requests
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from smscampaigns.models import Lead
from vibes.conf import get_client
from vibes.models import Subscription, VibesList
from vibes.subscriber_sync import subscribers_sync

from .harness import SimulatorProcess, after_inserting_leads, peak_rss_mb

LIST_ID = "101"  # the simulator's seeded "SMS Newsletter"
CHUNK = 20_000
SEED_CHUNK = 10_000
SYNC_COUNTS = ("subscribers", "linked", "created", "changed", "unsubscribed", "unchanged", "superseded")


def measure(
    *, leads: int, subscribers: int, stale: int, page_size: int, rate_limit: float, latency_ms: float
) -> dict:
    """The whole benchmark in this (empty) database: its report."""
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    vibes_list, seed = build(leads=leads, subscribers=subscribers, stale=stale)
    report = {
        "leads": leads,
        "subscribers": subscribers,
        "stale": stale,
        "page_size": page_size,
        "database": connection.settings_dict["ENGINE"].rsplit(".", 1)[-1],
        "build_seconds": round(time.perf_counter() - started, 1),
        "paging_calls_needed": math.ceil(subscribers / page_size) + 1,
    }
    with SimulatorProcess(rate_limit=rate_limit, latency_ms=latency_ms) as simulator:
        seed_subscribers(simulator, seed)
        del seed
        report["peak_rss_before_syncing_mb"] = peak_rss_mb()
        for name in ("first_sync", "second_sync"):
            report[name] = sync_timed(simulator, vibes_list, page_size=page_size)
    report["leads_after"] = Lead.objects.count()
    # The peak of this process, building the data included: the syncs
    # raised it only if it is above the one before them.
    report["peak_rss_mb"] = peak_rss_mb()
    return report


def build(*, leads: int, subscribers: int, stale: int, seed: int = 1):
    """The leads and their local subscriptions (plain multi-row inserts), and the simulator's subscribers."""
    rng = random.Random(seed)
    vibes_list, _ = VibesList.objects.get_or_create(vibes_id=LIST_ID, defaults={"name": "SMS Newsletter"})
    lead_table = connection.ops.quote_name(Lead._meta.db_table)
    subscription_table = connection.ops.quote_name(Subscription._meta.db_table)
    now = timezone.now()
    numbers, previous = {}, ""  # number -> its first lead
    with connection.cursor() as cursor, tqdm(total=leads, desc="Building leads", file=sys.stderr) as bar:
        for start in range(1, leads + 1, CHUNK):
            rows = []
            for lead_id in range(start, min(start + CHUNK, leads + 1)):
                roll = rng.random()
                # 5% without a number, 10% sharing the number of the lead before.
                phone = "" if roll < 0.05 else previous if roll < 0.15 and previous else f"+1212{lead_id:07d}"
                if phone:
                    previous = phone
                    numbers.setdefault(phone, lead_id)
                rows.append(
                    (lead_id, "Pat", "Doe", f"p{lead_id}@bench.invalid", phone, "US", "bench", now, now)
                )
            with transaction.atomic():
                cursor.executemany(
                    f"INSERT INTO {lead_table} (id, first_name, last_name, email, mobile_phone, country, "
                    f"city, state, lead_source, lead_score, blocklisted, marketing_suspended, created_at, "
                    f"updated_at) VALUES (%s, %s, %s, %s, %s, %s, '', '', %s, 0, false, false, %s, %s)",
                    rows,
                )
            bar.update(len(rows))
        distinct = list(numbers)
        rng.shuffle(distinct)
        third = subscribers // 3
        through_app, by_keyword = distinct[:third], distinct[third : 2 * third]
        gone = distinct[2 * third : 2 * third + stale]
        new_numbers = [f"+1646{n:07d}" for n in range(subscribers - 2 * third)]
        local = [(numbers[n], vibes_list.pk, "subscribed", "", "", now, now) for n in through_app + gone]
        with transaction.atomic():
            cursor.executemany(
                f"INSERT INTO {subscription_table} (lead_id, vibes_list_id, status, vibes_person_key, "
                f"opt_out_reason, status_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                local,
            )
        after_inserting_leads(cursor)
    seed_rows = (
        [{"mdn": n, "external_person_id": str(numbers[n])} for n in through_app]
        + [{"mdn": n} for n in by_keyword]
        + [{"mdn": n, "custom_fields": {"first_name": "Kim"}} for n in new_numbers]
    )
    rng.shuffle(seed_rows)  # people join in no particular order
    return vibes_list, seed_rows


def seed_subscribers(simulator: SimulatorProcess, rows: list[dict]) -> None:
    """The list's subscribers in Vibes, through the simulator's control endpoint."""
    for start in tqdm(range(0, len(rows), SEED_CHUNK), desc="Seeding Vibes", file=sys.stderr):
        response = requests.post(
            f"{simulator.url}/_simulator/subscribers",
            json={"list_id": LIST_ID, "subscribers": rows[start : start + SEED_CHUNK]},
            timeout=120,
        )
        response.raise_for_status()


def sync_timed(simulator: SimulatorProcess, vibes_list, *, page_size: int) -> dict:
    """One sync of the list, timed (its pages, then its checks) and counted by Vibes."""
    before = simulator.stats()
    pages_done = []  # when the last page was taken: the checks come after it

    def progress(sync, done, total):
        if sync.phase == sync.Phase.PAGES:
            pages_done[:] = [time.perf_counter()]
            bar.update(done - bar.n)

    with tqdm(desc="Syncing", unit=" subscribers", file=sys.stderr) as bar:
        started = time.perf_counter()
        sync = subscribers_sync(
            vibes_list=vibes_list, client=get_client(), page_size=page_size, progress=progress
        )
        seconds = time.perf_counter() - started
    pages_seconds = (pages_done[0] if pages_done else started) - started
    after = simulator.stats()
    by_status = {
        status: count - before["by_status"].get(status, 0)
        for status, count in after["by_status"].items()
        if count != before["by_status"].get(status, 0)
    }
    return {
        "seconds": round(seconds, 1),
        "pages_seconds": round(pages_seconds, 1),
        "checks_seconds": round(seconds - pages_seconds, 1),
        "calls": after["requests"] - before["requests"],
        "calls_by_status": by_status,
        "pages": sync.next_page,  # the pages read, and the empty one after them
        "checks": sync.calls - sync.next_page,
        "calls_per_second": round((after["requests"] - before["requests"]) / seconds, 1),
        "max_requests_per_second_seen_by_vibes": after["max_requests_per_second"],
        **{name: getattr(sync, name) for name in SYNC_COUNTS},
    }
