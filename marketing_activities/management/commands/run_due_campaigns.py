from django.conf import settings
from django.core.management.base import BaseCommand

from marketing_activities.runner import results_expire_confirmations, run_execute
from marketing_activities.runner.deferral import released_from_quiet_hours
from marketing_activities.runner.report import format_summary
from marketing_activities.runner.schedule import stale_runs, start_due_runs
from marketing_activities.runner.waits import runs_resume_due
from marketing_activities.tasks import run_dispatch
from vibes.callbacks import callbacks_apply_pending


class Command(BaseCommand):
    help = (
        "Start the scheduled campaigns that are due, finish runs that lost their worker, send the SMS "
        "whose quiet hours are over, resume runs whose Wait step is over, expire "
        "Subscribe results whose confirmation window has passed, and apply Vibes callbacks whose worker "
        "failed. Safe to run every minute from cron: "
        "a campaign is started once however many run at once."
    )

    def handle(self, *args, **options):
        applied = callbacks_apply_pending()
        if applied:
            self.stdout.write(f"{applied} Vibes callbacks applied that had waited.")
        expired = results_expire_confirmations()
        if expired:
            self.stdout.write(f"{expired} pending confirmations expired.")
        runs = start_due_runs() + stale_runs() + runs_resume_due()
        runs += released_from_quiet_hours(runs)
        for run in runs:
            if settings.CELERY_BROKER_URL:
                run_dispatch(run)
                self.stdout.write(f"Run {run.pk} of “{run.campaign}” handed to the workers.")
            else:
                self.stdout.write(format_summary(run_execute(run=run)))
        if runs or options["verbosity"] > 1:
            self.stdout.write(self.style.SUCCESS(f"{len(runs)} runs started or resumed."))
