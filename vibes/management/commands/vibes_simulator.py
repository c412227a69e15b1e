import signal
import threading
from collections import defaultdict
from datetime import UTC

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils.translation import gettext as _

from vibes.models import AcquisitionCampaign, Subscription, VibesList
from vibes.simulator import VibesSimulator


class Command(BaseCommand):
    help = (
        "Run a local Vibes (Platform and Connect APIs) with real state and callbacks, "
        "for development and load tests. It serves the Vibes lists and acquisition campaigns "
        "of the app's database. Stop it with Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8787)
        parser.add_argument(
            "--rate-limit", type=float, default=0, help="answer 429 above N requests/s (0: never)"
        )
        parser.add_argument("--latency-ms", type=float, default=0, help="added to every API answer")
        parser.add_argument(
            "--error-rate", type=float, default=0, help="share of API requests answered 5xx (0-1)"
        )
        parser.add_argument(
            "--timeout-rate", type=float, default=0, help="share of API requests that hang (0-1)"
        )
        parser.add_argument(
            "--confirm-after", type=float, default=None, help="pending participants reply Y after N s"
        )
        parser.add_argument(
            "--confirmation-window",
            type=float,
            default=24 * 3600,
            help="a pending participant who has not replied after N s expires (default: 24 hours)",
        )
        parser.add_argument(
            "--receipt-failure-rate",
            type=float,
            default=0,
            help="share of SMS whose delivery receipt says failed, with a carrier's reason (0-1)",
        )
        parser.add_argument(
            "--callback-url",
            default=settings.VIBES_DELIVERY_RECEIPT_URL,
            help="the app's callbacks URL, with Basic credentials (default: VIBES_DELIVERY_RECEIPT_URL, "
            "so the password stays out of the process list)",
        )
        parser.add_argument("--company-key", default=settings.VIBES_COMPANY_KEY)
        parser.add_argument("--username", default=settings.VIBES_USERNAME)
        parser.add_argument("--password", default=settings.VIBES_PASSWORD)
        parser.add_argument(
            "--seed-from-db",
            action="store_true",
            help="start with the app's subscribed leads subscribed in the simulator too (the demo data)",
        )

    def handle(self, *args, **options):
        try:
            lists = lists_from_db()
            subscribers = subscribers_from_db() if options["seed_from_db"] else ()
        except DatabaseError as error:
            # A fresh checkout: the simulator serves the database's lists, so it needs them.
            raise CommandError(
                _("Cannot read the Vibes lists from the database (%(error)s): run manage.py migrate first.")
                % {"error": error}
            ) from None
        simulator = VibesSimulator(
            host=options["host"],
            port=options["port"],
            company_key=options["company_key"],
            username=options["username"],
            password=options["password"],
            short_code=settings.VIBES_SHORT_CODE,
            lists=lists,
            subscribers=subscribers,
            callback_url=options["callback_url"],
            confirm_after=options["confirm_after"],
            confirmation_window=options["confirmation_window"],
            receipt_failure_rate=options["receipt_failure_rate"],
            error_rate=options["error_rate"],
            rate_limit=options["rate_limit"],
            latency_ms=options["latency_ms"],
            timeout_rate=options["timeout_rate"],
        )
        try:
            simulator.start()
        except OSError as error:
            raise CommandError(
                _("Cannot listen on %(host)s:%(port)s: %(error)s") % {**options, "error": error}
            ) from None
        self.stdout.write(
            self.style.SUCCESS(_("Vibes simulator on %(url)s (Ctrl-C stops it)") % {"url": simulator.url})
        )
        wait_for_stop_signal()
        simulator.stop()


def lists_from_db() -> list[dict]:
    """The app's Vibes lists and acquisition campaigns that are still in Vibes, as the simulator's seed.

    On a fresh install these are the demo company's, which `seed_demo` writes.
    """
    campaigns = defaultdict(list)
    for campaign in AcquisitionCampaign.objects.active().order_by("pk"):
        seed = {
            "acquisition_id": campaign.vibes_id,
            "description": campaign.name,
            "keywords": [word.strip() for word in campaign.keywords.split(",") if word.strip()],
        }
        if campaign.status:  # none: the simulator's own default, active
            seed["status"] = campaign.status
        if campaign.ends_at:
            seed["end_date"] = campaign.ends_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        campaigns[campaign.vibes_list_id].append(seed)
    return [
        {
            "id": vibes_list.vibes_id,
            "name": vibes_list.name,
            "acquisition_campaigns": campaigns[vibes_list.pk],
        }
        for vibes_list in VibesList.objects.active().order_by("pk")
    ]


def subscribers_from_db() -> list[dict]:
    """The app's subscribed leads, one per number and list, as the simulator's seed."""
    rows = (
        Subscription.objects.filter(status=Subscription.Status.SUBSCRIBED)
        .exclude(lead__mobile_phone="")
        .order_by("lead_id")
        .values_list("vibes_list__vibes_id", "lead__mobile_phone", "lead_id")
    )
    seen, subscribers = set(), []
    for list_id, mdn, lead_id in rows.iterator():
        if (list_id, mdn) not in seen:
            seen.add((list_id, mdn))
            subscribers.append({"list_id": list_id, "mdn": mdn, "external_person_id": str(lead_id)})
    return subscribers


def wait_for_stop_signal():
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1):
        pass
