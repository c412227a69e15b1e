"""Run now's counts in the background, with their progress.

Counting the audience reads everyone the smart list picks: tens of seconds
at ten million people. The confirmation's counts request starts an
AudienceCount and returns at once; the count runs where background work
runs (Celery, or a thread: smscampaigns/background.py), read-only, and
records how far it is as it goes (audience_counts.py counts the pass over
everyone in slices of lead ids); the confirmation polls it, showing a
progress bar, and then the counts by reason.

The Smart List tab's "Count them exactly" is a count of the same kind that
counts only who qualifies (an AudienceCount with the `definition` counted):
the people the definition picks, in slices of lead ids.
"""

from django.utils import timezone, translation

from smscampaigns.models import Lead
from smscampaigns.smartlists import parse_definition

from ..models import AudienceCount, FlowStep, Outcome, SmartCampaign
from .audience_counts import CHUNK_PEOPLE, StepCounts, campaign_audience_counts
from .checks import NobodyLeftToRun, check_anyone_left
from .person_limit import PersonLimitRefused, person_limit_describe
from .preview import RunNowPreview, run_now_preview_of
from .report import NumberBlocker, NumberBlockers

# Counts older than this are removed as the campaign is counted again.
KEPT = AudienceCount.GIVEN_UP_AFTER


def audience_count_create(
    *, campaign: SmartCampaign, language: str = "", smart_list_only: bool = False
) -> AudienceCount:
    """A new count of `campaign`'s audience, to be run (tasks.audience_count_start
    has it run in the background); older counts of it are removed. With
    `smart_list_only`, only who its smart list picks, as it is defined now."""
    AudienceCount.objects.filter(campaign=campaign, started_at__lt=timezone.now() - KEPT).delete()
    definition = campaign.smart_list.definition if smart_list_only else None
    return AudienceCount.objects.create(campaign=campaign, language=language, definition=definition)


def audience_count_run(*, count_id: int) -> None:
    """Count, recording the progress on the AudienceCount, then its result."""
    count = AudienceCount.objects.select_related("campaign").get(pk=count_id)

    def progress(done: int, total: int) -> None:
        AudienceCount.objects.filter(pk=count.pk).update(done=done, total=total)

    try:
        with translation.override(count.language or None):
            if count.definition is not None:
                result = _people_counted(count.definition, progress)
            else:
                result = _counted(count.campaign, progress)
    except Exception:
        AudienceCount.objects.filter(pk=count.pk).update(failed=True, finished_at=timezone.now())
        raise
    AudienceCount.objects.filter(pk=count.pk).update(result=result, finished_at=timezone.now())


def _people_counted(definition: dict, progress) -> dict:
    """{"people": how many people `definition` picks}, counted in slices of lead
    ids (each read through the primary key), the progress recorded after each."""
    leads = Lead.objects.filter(parse_definition(definition).to_q()).order_by()
    first = Lead.objects.order_by("pk").values_list("pk", flat=True).first()
    last = Lead.objects.order_by("-pk").values_list("pk", flat=True).first()
    if first is None:
        return {"people": 0}
    starts = range(first, last + 1, CHUNK_PEOPLE)
    people = 0
    for done, start in enumerate(starts, start=1):
        people += leads.filter(pk__gte=start, pk__lt=start + CHUNK_PEOPLE).count()
        progress(done, len(starts))
    return {"people": people}


def _counted(campaign: SmartCampaign, progress) -> dict:
    try:
        check_anyone_left(campaign)
    except NobodyLeftToRun as error:
        return {"nobody_left": [str(message) for message in error.problems]}
    try:
        counted = campaign_audience_counts(campaign=campaign, progress=progress)
    except PersonLimitRefused as error:
        return {"refused": [str(error.message)]}
    limit = (
        person_limit_describe(
            campaign,
            counted[0].person_limit,
            beyond=counted[0].counts.get(Outcome.SKIPPED_PERSON_LIMIT.code, 0),
        )
        if counted
        else []
    )
    return {
        "person_limit": [str(line) for line in limit],
        "steps": [
            {
                "position": step.step.position,
                "action": step.step.action,
                "counts": step.counts,
                "blockers": {
                    code: {
                        "shown": [
                            [blocker.lead_id, blocker.name, blocker.skipped] for blocker in blockers.shown
                        ],
                        "total": blockers.total,
                    }
                    for code, blockers in step.blockers.items()
                },
            }
            for step in counted
        ],
    }


def audience_count_preview(count: AudienceCount) -> RunNowPreview:
    """What the confirmation shows of a finished count."""
    result = count.result or {}
    if result.get("nobody_left"):
        return RunNowPreview(nobody_left=result["nobody_left"])
    if result.get("refused"):
        return RunNowPreview(refused=result["refused"])
    return run_now_preview_of(
        [
            StepCounts(
                FlowStep(position=step["position"], action=step["action"]),
                step["counts"],
                {
                    code: NumberBlockers(
                        shown=[NumberBlocker(*blocker) for blocker in blockers["shown"]],
                        total=blockers["total"],
                    )
                    for code, blockers in step["blockers"].items()
                },
            )
            for step in result.get("steps", [])
        ],
        person_limit=result.get("person_limit", []),
    )
