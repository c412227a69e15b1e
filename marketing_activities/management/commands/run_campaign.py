from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from marketing_activities.models import CampaignRun, SmartCampaign
from marketing_activities.runner import (
    CampaignCannotRun,
    run_abort,
    run_create,
    run_execute,
    run_resume,
    run_retry_uncertain,
)
from marketing_activities.runner.deferral import run_deferred_count
from marketing_activities.runner.report import format_summary


class Command(BaseCommand):
    help = (
        "Run a smart campaign's flow for everyone its smart list picks, or finish an interrupted run. "
        "Exits 0 when the run completed (or waits for quiet hours), 1 when it failed, 2 when the "
        "campaign cannot run."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", nargs="?", type=int, help="the smart campaign to run")
        parser.add_argument("--dry-run", action="store_true", help="plan and report, call nobody")
        parser.add_argument(
            "--resume", type=int, metavar="RUN_ID", help="finish an interrupted or failed run"
        )
        parser.add_argument(
            "--retry-uncertain",
            type=int,
            metavar="RUN_ID",
            help="send again the calls of a run whose fate is unknown (they may have gone out already)",
        )
        parser.add_argument(
            "--abort",
            type=int,
            metavar="RUN_ID",
            help="abort an active run: no call starts any more, the people not yet called are cancelled",
        )
        parser.add_argument(
            "--concurrency", type=int, help="calls in flight at once (default RUNNER_CONCURRENCY)"
        )

    def handle(self, *args, campaign_id, dry_run, resume, retry_uncertain, abort, concurrency, **options):
        if abort:
            self._abort(abort)
            return
        try:
            run = self._run(campaign_id, dry_run, resume, retry_uncertain)
        except CampaignCannotRun as error:
            raise CommandError(" ".join(str(p) for p in error.problems), returncode=2) from None
        with tqdm(
            desc=f"Run {run.pk}",
            unit=" calls",
            total=run.progress_total or None,
            disable=options["verbosity"] == 0,
            file=self.stderr._out,
        ) as bar:

            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            run = run_execute(run=run, progress=progress, concurrency=concurrency)
        self.stdout.write(format_summary(run))
        if run.is_active and (deferred := run_deferred_count(run)):
            self.stdout.write(
                f"Run {run.pk} waits for quiet hours: {deferred} SMS deferred, sent when their recipients' "
                "window opens (run_due_campaigns, every minute)."
            )
            return
        if run.in_wait_step:
            # Not an error: the scheduler (run_due_campaigns) goes on with it when the wait is over.
            self.stdout.write(f"Run {run.pk} is in a Wait step until {run.resume_at:%Y-%m-%d %H:%M %Z}.")
            return
        if run.status != CampaignRun.Status.COMPLETED:
            raise CommandError(f"Run {run.pk} {run.get_status_display()}: {run.error}", returncode=1)

    def _abort(self, run_id):
        run = CampaignRun.objects.filter(pk=run_id).first()
        try:
            if run is None:
                raise CampaignCannotRun([f"There is no run {run_id}."])
            run = run_abort(run=run)
        except CampaignCannotRun as error:
            raise CommandError(" ".join(str(p) for p in error.problems), returncode=2) from None
        self.stdout.write(format_summary(run))
        self.stdout.write(self.style.SUCCESS(f"Run {run.pk} aborted."))

    def _run(self, campaign_id, dry_run, resume, retry_uncertain) -> CampaignRun:
        if resume or retry_uncertain:
            run = CampaignRun.objects.filter(pk=resume or retry_uncertain).first()
            if run is None:
                raise CampaignCannotRun([f"There is no run {resume or retry_uncertain}."])
            if retry_uncertain:
                count = run_retry_uncertain(run=run)
                self.stdout.write(f"{count} uncertain calls queued again.")
                return run
            return run_resume(run=run)
        campaign = SmartCampaign.objects.filter(pk=campaign_id).first() if campaign_id else None
        if campaign is None:
            raise CampaignCannotRun(
                [
                    f"There is no smart campaign {campaign_id}."
                    if campaign_id
                    else "Name a campaign id, or --resume/--retry-uncertain a run."
                ]
            )
        return run_create(campaign=campaign, trigger=CampaignRun.Trigger.COMMAND, dry_run=dry_run)
