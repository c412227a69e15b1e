import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from marketing_activities.reporting.rollups import sms_rollups_differences, sms_rollups_rebuild


def _moment(value: str) -> datetime.datetime:
    moment = parse_datetime(value)
    if moment is None and parse_date(value) is not None:
        moment = datetime.datetime.combine(parse_date(value), datetime.time())
    if moment is None:
        raise CommandError(f"--since {value!r}: not a date (2026-03-01) or a time (2026-03-01 14:00).")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Recount the SMS figures (sent, delivered, bounced, replied, clicked, unsubscribed by hour, "
        "campaign, SMS message and Vibes list) from the run results and compare them with the rollups "
        "the dashboards read. Prints every difference and exits 1 when there is one; --fix rebuilds "
        "the rollups from the recount."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_moment, help="only the SMS called from this day or time on")
        parser.add_argument("--fix", action="store_true", help="rebuild the rollups that differ")

    def handle(self, *args, since=None, fix=False, **options):
        differences = sms_rollups_differences(since=since)
        for difference in differences:
            hour, campaign, message, vibes_list = difference.key
            figures = ", ".join(
                f"{name} {kept} kept, {counted} counted" for name, kept, counted in difference.fields()
            )
            self.stdout.write(
                f"{hour:%Y-%m-%d %H}:00 UTC, campaign {campaign}, SMS message {message or '-'}, "
                f"Vibes list {vibes_list or '-'}: {figures}"
            )
        if not differences:
            self.stdout.write(self.style.SUCCESS("The SMS figures agree with a recount of the run results."))
        elif fix:
            written = sms_rollups_rebuild(since=since)
            self.stdout.write(
                self.style.SUCCESS(f"Rebuilt from the run results: {written} hours of figures.")
            )
        else:
            raise CommandError(
                f"The SMS figures differ from a recount in {len(differences)} places; --fix rebuilds them.",
                returncode=1,
            )
