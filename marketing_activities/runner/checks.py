"""Why a campaign cannot run now: the refusals every way of starting a run shares."""

from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..models import SmartCampaign
from .planner import everyone_already_ran


class CampaignCannotRun(Exception):
    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(" ".join(str(p) for p in self.problems))


class CampaignAlreadyRunning(CampaignCannotRun):
    pass


class NobodyLeftToRun(CampaignCannotRun):
    """Under the qualification rule "once" (or "once every N", within its
    period), everyone the smart list picks has already run through the flow:
    a run would call nobody."""


def check_anyone_left(campaign: SmartCampaign) -> None:
    """Raise NobodyLeftToRun when a run would have nobody left to qualify.

    A couple of counts, not a plan, so the Run now dialog and every start
    can afford it. A smart list that does not parse is left to
    `campaign.problems()`.
    """
    try:
        people = everyone_already_ran(campaign)
    except ValidationError:
        return
    if people is None:
        return
    if people and campaign.qualification_rule == campaign.QualificationRule.ONCE_EVERY:
        message = ngettext(
            "Nobody is left to qualify: the %(count)s person the smart list picks has run through this "
            "flow within the last %(period)s, and each person can run through it once every %(period)s.",
            "Nobody is left to qualify: all %(count)s people the smart list picks have run through this "
            "flow within the last %(period)s, and each person can run through it once every %(period)s.",
            people,
        ) % {
            "count": number_format(people, force_grouping=True),
            "period": campaign.qualification_period_display,
        }
    elif people:
        message = ngettext(
            "Nobody is left to qualify: the %(count)s person the smart list picks has already run "
            "through this flow, and each person can run through it once.",
            "Nobody is left to qualify: all %(count)s people the smart list picks have already run "
            "through this flow, and each person can run through it once.",
            people,
        ) % {"count": number_format(people, force_grouping=True)}
    else:
        message = _("Nobody is left to qualify: the smart list picks nobody.")
    raise NobodyLeftToRun([message])
