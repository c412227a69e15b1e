"""The campaign runner: one service behind every way of running a campaign.

`manage.py run_campaign`, the admin's "Run now", the Run button and
scheduled runs all come through here:

- runs.py: `run_create` checks the campaign can run (and, under the
  qualification rule "once", that anyone is left to qualify) and records a
  queued run with a snapshot of its flow; `run_execute` works on a run until
  it is done, in this process; `run_resume` and `run_retry_uncertain` make
  a stopped run active again; `run_abort` stops an active run for good.
  Handing a run to a background worker (Celery, a thread) is `marketing_activities.tasks`' `run_dispatch` and
  `campaign_start`;
- rules.py says who each step calls for, planner.py plans it in SQL,
  executor.py makes the calls (calls.py) in batches, uncertain.py settles
  calls whose fate is unknown;
- followup.py moves results on after the call, as receipts and
  confirmations arrive and confirmation windows end;
- preview.py says who would get what, writing nothing; checks.py why a
  campaign cannot run; report.py shows a run's counts; schedule.py starts
  what is due.
"""

from .checks import CampaignAlreadyRunning, CampaignCannotRun, NobodyLeftToRun, check_anyone_left
from .executor import RunStopped
from .followup import result_apply_receipt, results_expire_confirmations, results_follow_confirmation
from .preview import campaign_preview
from .runs import run_abort, run_create, run_execute, run_resume, run_retry_uncertain

__all__ = [
    "CampaignAlreadyRunning",
    "CampaignCannotRun",
    "NobodyLeftToRun",
    "RunStopped",
    "campaign_preview",
    "check_anyone_left",
    "result_apply_receipt",
    "results_expire_confirmations",
    "results_follow_confirmation",
    "run_abort",
    "run_create",
    "run_execute",
    "run_resume",
    "run_retry_uncertain",
]
