from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from vibes.conf import get_client
from vibes.exceptions import VibesAuthError, VibesConnectionError, VibesError, VibesTimeout
from vibes.models import SubscriberSync
from vibes.subscriber_sync import PAGE_SIZE, SubscriberSyncBusy, subscriber_sync_summary
from vibes.sync import vibes_sync


class Command(BaseCommand):
    help = (
        "Pull the Vibes subscription lists and their acquisition campaigns into the app. "
        "With --subscriptions, also read each list's subscribers from Vibes: leads are found by "
        "number and linked, subscribers without a lead become leads (unless --no-create), and "
        "leads Vibes does not list are unsubscribed. A sync that stopped continues where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--subscriptions",
            action="store_true",
            help="also bring every lead's status on every active list in line with Vibes",
        )
        parser.add_argument(
            "--no-create",
            action="store_true",
            help="do not create leads for subscribers whose number no lead has",
        )
        parser.add_argument(
            "--page-size", type=int, default=PAGE_SIZE, help="subscribers asked for per page (a new sync)"
        )

    def handle(self, *args, subscriptions: bool, no_create: bool, page_size: int, **options):
        with ProgressBars(disable=options["verbosity"] == 0) as bars:
            try:
                report = vibes_sync(
                    client=get_client(),
                    subscriptions=subscriptions,
                    create_leads=not no_create,
                    page_size=max(1, page_size),
                    progress=bars.update,
                )
            except (VibesError, SubscriberSyncBusy) as error:
                raise CommandError(describe_failure(error)) from None
        self.stdout.write(self.style.SUCCESS("\n".join(report.lines())))


class ProgressBars:
    """A bar per list and phase: subscribers read (Vibes publishes no total), then numbers checked."""

    def __init__(self, *, disable: bool):
        self.disable, self.bar, self.key = disable, None, None

    def update(self, sync: SubscriberSync, done: int, total: int | None) -> None:
        if self.key != (sync.pk, sync.phase):
            self.close()
            self.key = (sync.pk, sync.phase)
            checking = sync.phase == SubscriberSync.Phase.CHECKS
            self.bar = tqdm(
                total=total,
                desc=f"{sync.vibes_list}: {'checking numbers' if checking else 'reading subscribers'}",
                unit=" numbers" if checking else " subscribers",
                disable=self.disable,
            )
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def describe_failure(error: Exception) -> str:
    """What stopped the sync, and for each list's sync that stopped, how far it got."""
    text = describe_vibes_error(error) if isinstance(error, VibesError) else str(error)
    for sync in SubscriberSync.objects.filter(status=SubscriberSync.Status.FAILED).select_related(
        "vibes_list"
    ):
        text += "\n" + subscriber_sync_summary(sync)
    return text


def describe_vibes_error(error: VibesError) -> str:
    """One line for an operator: what went wrong with Vibes, without a stack trace."""
    client = get_client()
    if isinstance(error, (VibesConnectionError, VibesTimeout)):
        return _(
            "Vibes is unreachable at %(url)s (%(error)s). Is VIBES_PLATFORM_URL right, and is the "
            "simulator running (manage.py vibes_simulator)?"
        ) % {"url": client.platform_url, "error": error}
    if isinstance(error, VibesAuthError):
        return _(
            "Vibes refused the credentials (check VIBES_COMPANY_KEY, VIBES_USERNAME, "
            "VIBES_PASSWORD): %(error)s"
        ) % {"error": error}
    return _("Vibes sync failed: %(error)s") % {"error": error}
