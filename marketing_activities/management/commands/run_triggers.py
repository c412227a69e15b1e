from django.core.management.base import BaseCommand

from marketing_activities.triggers import triggers_dispatch


class Command(BaseCommand):
    help = (
        "Match the activities recorded since the last pass to the active trigger campaigns and run "
        "their flows for the people they fire for, in this process. Safe to run every minute from "
        "cron beside the web process and the workers: an activity fires a campaign once however "
        "many run at once."
    )

    def handle(self, *args, **options):
        report = triggers_dispatch()
        if not (report.activities or report.runs) and options["verbosity"] < 2:
            return  # quiet every minute from cron when nothing happened
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.activities} activities matched: {report.firings} campaigns fired, "
                f"{report.runs} runs worked."
            )
        )
