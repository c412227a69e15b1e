from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from smscampaigns.models import Lead
from vibes.conf import get_client
from vibes.exceptions import VibesAuthError, VibesConnectionError, VibesError, VibesTimeout
from vibes.models import VibesList
from vibes.sync import vibes_sync


class Command(BaseCommand):
    help = (
        "Pull the Vibes subscription lists and their acquisition campaigns into the app. "
        "With --subscriptions, also refresh every lead's subscription status from Vibes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--subscriptions",
            action="store_true",
            help="also check each lead with a number on each active list",
        )

    def handle(self, *args, subscriptions: bool, **options):
        total = Lead.objects.with_phone().count() * VibesList.objects.active().count() if subscriptions else 0
        with tqdm(
            total=total,
            desc=_("Checking subscriptions"),
            unit=" checks",
            disable=not total or options["verbosity"] == 0,
        ) as bar:
            try:
                report = vibes_sync(client=get_client(), subscriptions=subscriptions, progress=bar.update)
            except VibesError as error:
                raise CommandError(describe_vibes_error(error)) from None
        for problem in report.errors:
            self.stderr.write(problem)
        self.stdout.write(self.style.SUCCESS(report.summary()))


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
