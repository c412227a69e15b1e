"""Writes behind the Marketing Activities screens: the tree, SMS messages, smart lists, flows, schedules."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from smscampaigns.models import SmartList
from vibes.models import AcquisitionCampaign, VibesList

from .models import FlowStep, Folder, Program, SmartCampaign, SmsMessage
from .reporting.rollups import sms_rollups_forget_message

TreeNode = Folder | Program | SmartCampaign | SmsMessage


# --- The tree -------------------------------------------------------------------


def folder_create(*, name: str, parent: Folder | None) -> Folder:
    folder = Folder(name=name.strip(), parent=parent)
    folder.full_clean()
    folder.save()
    return folder


def program_create(*, name: str, folder: Folder, description: str = "") -> Program:
    program = Program(name=name.strip(), folder=folder, description=description)
    program.full_clean()
    program.save()
    return program


@transaction.atomic
def campaign_create(*, name: str, program: Program, description: str = "") -> SmartCampaign:
    campaign = SmartCampaign(name=name.strip(), program=program, description=description)
    # The smart list is created on save; validate everything else first.
    campaign.full_clean(exclude=["smart_list"])
    campaign.save()
    return campaign


def sms_message_create(*, name: str, program: Program, text: str) -> SmsMessage:
    message = SmsMessage(name=name.strip(), program=program, text=text)
    message.full_clean()
    message.save()
    return message


def node_rename(*, node: TreeNode, name: str) -> TreeNode:
    node.name = name.strip()
    node.full_clean(exclude=["smart_list"] if isinstance(node, SmartCampaign) else None)
    node.save(update_fields=["name", "updated_at"])
    return node


def folder_move(*, folder: Folder, parent: Folder | None) -> Folder:
    """Move a folder under `parent` (None: to the top). Folder.clean refuses cycles."""
    folder.parent = parent
    folder.full_clean()
    folder.save(update_fields=["parent", "updated_at"])
    return folder


def program_move(*, program: Program, folder: Folder) -> Program:
    program.folder = folder
    program.full_clean()
    program.save(update_fields=["folder", "updated_at"])
    return program


def node_delete_blocker(*, node: TreeNode) -> str | None:
    """Why `node` cannot be deleted, as a message for the marketer; None when it can.

    The tree's menu and delete form ask before offering Delete, and the
    delete services ask again (another tab may have changed things since).
    """
    if isinstance(node, Folder):
        # The database would refuse too (PROTECT); asking first gives a clear message.
        if node.children.exists() or node.programs.exists():
            return _("The folder “%(name)s” is not empty: move or delete its folders and programs first.") % {
                "name": node.name
            }
    elif isinstance(node, Program):
        # Deleting would cascade to campaigns, their runs and results: ask for it one by one instead.
        if node.campaigns.exists() or node.sms_messages.exists():
            return _("The program “%(name)s” is not empty: delete its campaigns and SMS messages first.") % {
                "name": node.name
            }
    elif isinstance(node, SmartCampaign):
        if node.runs.active().exists():
            return _("The campaign “%(name)s” is running; wait until the run has finished.") % {
                "name": node.name
            }
    elif isinstance(node, SmsMessage):
        used_by = list(
            SmartCampaign.objects.filter(flow_steps__sms_message=node)
            .distinct()
            .order_by("name")
            .values_list("name", flat=True)
        )
        if used_by:
            return _(
                "The SMS message “%(name)s” is used by the flow of %(campaigns)s; remove it there first."
            ) % {"name": node.name, "campaigns": ", ".join(f"“{n}”" for n in used_by)}
    return None


def _refuse_if_blocked(node: TreeNode) -> None:
    blocker = node_delete_blocker(node=node)
    if blocker:
        raise ValidationError(blocker)


def folder_delete(*, folder: Folder) -> None:
    _refuse_if_blocked(folder)
    folder.delete()


def program_delete(*, program: Program) -> None:
    _refuse_if_blocked(program)
    program.delete()


@transaction.atomic
def campaign_delete(*, campaign: SmartCampaign) -> None:
    _refuse_if_blocked(campaign)
    smart_list = campaign.smart_list
    campaign.delete()
    # The smart list belongs to the campaign alone (created with it).
    smart_list.delete()


@transaction.atomic
def sms_message_delete(*, message: SmsMessage) -> None:
    _refuse_if_blocked(message)
    # Its runs' steps will name no message: its SMS figures go with them.
    sms_rollups_forget_message(sms_message_id=message.pk)
    message.delete()


# --- SMS messages and smart lists ----------------------------------------------


def sms_message_update(
    *, message: SmsMessage, name: str, text: str, dont_track_links: bool | None = None
) -> SmsMessage:
    message.name = name.strip()
    message.text = text
    if dont_track_links is not None:
        message.dont_track_links = dont_track_links
    message.full_clean()
    message.save()
    return message


def smart_list_edit(*, smart_list: SmartList, definition: dict) -> SmartList:
    """Store the rules and logic as the marketer typed them, problems and all,
    as the Flow tab keeps an incomplete step: nothing typed is lost, and the
    campaign cannot run until the problems are fixed (SmartCampaign.problems()
    parses the smart list before every run)."""
    rules = definition.get("rules") if isinstance(definition, dict) else None
    if not (
        isinstance(rules, list)
        and isinstance(definition.get("logic"), str)
        and set(definition) == {"logic", "rules"}
        and all(isinstance(rule, dict) for rule in rules)
    ):
        # Never from the editor; the shape is what every reader of a smart list relies on.
        raise ValidationError(_('The smart list must be an object with "logic" and "rules".'))
    if smart_list.triggers:
        # The triggers are edited apart (smart_list_triggers_edit): the filters keep them.
        definition = {**definition, "triggers": smart_list.triggers}
    if definition != smart_list.definition:
        smart_list.definition = definition
        smart_list.save(update_fields=["definition", "updated_at"])
    return smart_list


def smart_list_triggers_edit(*, smart_list: SmartList, triggers: list[dict]) -> SmartList:
    """Store the triggers as the marketer chose them, problems and all, beside
    the filters; a smart list without triggers is a batch campaign's again."""
    if not isinstance(triggers, list) or not all(isinstance(trigger, dict) for trigger in triggers):
        raise ValidationError(_('"triggers" must be a list of triggers.'))
    stored = smart_list.definition if isinstance(smart_list.definition, dict) else {}
    definition = {"logic": stored.get("logic", "all"), "rules": stored.get("rules", [])}
    if triggers:
        definition["triggers"] = triggers
    if definition != smart_list.definition:
        smart_list.definition = definition
        smart_list.save(update_fields=["definition", "updated_at"])
    return smart_list


# --- The flow -------------------------------------------------------------------


@transaction.atomic
def flow_step_add(*, campaign: SmartCampaign, action: str, position: int | None = None) -> FlowStep:
    """Add an empty step of `action` at index `position` (None or too large: at the end).

    The step is saved as a draft: it lacks its list (and message) until the
    marketer picks them, and shows what it lacks at the step.
    """
    if action not in FlowStep.Action.values:
        raise ValidationError({"action": _("Choose one of the three SMS flow steps.")})
    steps = list(campaign.flow_steps.select_for_update())
    if position is None or position > len(steps):
        position = len(steps)
    position = max(position, 0)
    step = FlowStep.objects.create(campaign=campaign, action=action, position=position)
    steps.insert(position, step)
    _renumber(steps)
    return step


def _renumber(steps: list[FlowStep]) -> None:
    """Positions 0, 1, 2… in list order, written in one UPDATE (this also mends
    gaps that older edits or imports may have left)."""
    changed = []
    for index, step in enumerate(steps):
        if step.position != index:
            step.position = index
            changed.append(step)
    if changed:
        FlowStep.objects.bulk_update(changed, ["position"])


def flow_step_update(
    *,
    step: FlowStep,
    sms_message: SmsMessage | None = None,
    vibes_list: VibesList | None = None,
    acquisition_campaign: AcquisitionCampaign | None = None,
    requested_campaign: SmartCampaign | None = None,
    remove_from_campaign: SmartCampaign | None = None,
) -> FlowStep:
    """Store the step's choices at once, even when incomplete (the step shows its problems).

    Fields the action does not use are cleared, and so is an acquisition
    campaign of another list: changing the list invalidates the campaign.
    """
    if step.action != FlowStep.Action.SEND_SMS:
        sms_message = None
    if step.action != FlowStep.Action.SUBSCRIBE:
        acquisition_campaign = None
    if step.action != FlowStep.Action.REQUEST_CAMPAIGN:
        requested_campaign = None
    else:
        vibes_list = None  # a request texts nobody
    if step.action in (FlowStep.Action.WAIT, FlowStep.Action.REMOVE_FROM_FLOW):
        vibes_list = None  # texts nobody
    if step.action != FlowStep.Action.REMOVE_FROM_FLOW or (
        remove_from_campaign is not None and remove_from_campaign.pk == step.campaign_id
    ):
        remove_from_campaign = None  # empty is this campaign
    if acquisition_campaign is not None and (
        vibes_list is None or acquisition_campaign.vibes_list_id != vibes_list.pk
    ):
        acquisition_campaign = None
    step.sms_message = sms_message
    step.vibes_list = vibes_list
    step.acquisition_campaign = acquisition_campaign
    step.requested_campaign = requested_campaign
    step.remove_from_campaign = remove_from_campaign
    step.save(
        update_fields=[
            "sms_message",
            "vibes_list",
            "acquisition_campaign",
            "requested_campaign",
            "remove_from_campaign",
        ]
    )
    return step


WAIT_FIELDS = ("wait_amount", "wait_unit", "wait_until", "wait_then_day", "wait_then_time")


def flow_step_set_wait(*, step: FlowStep, **fields) -> FlowStep:
    """Store a Wait step's fields given (the others keep their values), even
    when incomplete: the step shows its problems (FlowStep.problems)."""
    unknown = set(fields) - set(WAIT_FIELDS)
    if unknown or step.action != FlowStep.Action.WAIT:
        raise ValueError(f"not a Wait step's fields: {sorted(unknown) or sorted(fields)}")
    for name, value in fields.items():
        setattr(step, name, "" if value is None and name in ("wait_unit", "wait_then_day") else value)
    step.save(update_fields=list(fields))
    return step


@transaction.atomic
def flow_steps_reorder(*, campaign: SmartCampaign, step_ids: list[int]) -> list[FlowStep]:
    """Put the campaign's steps in the order of `step_ids`, which must name each of its steps once."""
    steps = {step.pk: step for step in campaign.flow_steps.select_for_update()}
    if len(step_ids) != len(set(step_ids)) or set(step_ids) != set(steps):
        # A stale page (a step added or deleted in another tab) or a forged
        # request: refuse rather than guess which order was meant.
        raise ValidationError(_("The flow changed in the meantime; reload the page and try again."))
    ordered = [steps[pk] for pk in step_ids]
    _renumber(ordered)
    return ordered


@transaction.atomic
def flow_step_move(*, step: FlowStep, position: int) -> FlowStep:
    """Move one step to index `position` (as Wagtail's ReorderView takes it), shifting the others."""
    steps = list(FlowStep.objects.filter(campaign_id=step.campaign_id).select_for_update())
    current = next(s for s in steps if s.pk == step.pk)
    steps.remove(current)
    steps.insert(max(0, min(position, len(steps))), current)
    _renumber(steps)
    return current


@transaction.atomic
def flow_step_delete(*, step: FlowStep) -> None:
    campaign_id = step.campaign_id
    step.delete()
    # Close the gap so the numbers shown stay 1, 2, 3…
    _renumber(list(FlowStep.objects.filter(campaign_id=campaign_id).select_for_update()))


# --- Schedule -------------------------------------------------------------------


def campaign_schedule_update(
    *,
    campaign: SmartCampaign,
    qualification_rule: str,
    schedule: str,
    run_at=None,
    run_time=None,
    run_weekday: int | None = None,
    run_weekdays_only: bool = False,
    qualification_period: int | None = None,
    qualification_period_unit: str = "",
    person_limit_refuse_above: int | None = None,
    person_limit_per_run: int | None = None,
) -> SmartCampaign:
    if schedule != SmartCampaign.Schedule.NONE and campaign.is_trigger_campaign:
        raise ValidationError(
            {"schedule": _("A trigger campaign is never scheduled: its triggers start its runs.")}
        )
    campaign.qualification_rule = qualification_rule
    campaign.schedule = schedule
    # Keep only what the chosen schedule uses, so a stale date never comes back.
    # A monthly schedule's run_at is its first run, whose day of the month it keeps.
    dated = (SmartCampaign.Schedule.ONCE, SmartCampaign.Schedule.MONTHLY)
    campaign.run_at = run_at if schedule in dated else None
    recurring = schedule in (SmartCampaign.Schedule.DAILY, SmartCampaign.Schedule.WEEKLY)
    campaign.run_time = run_time if recurring else None
    campaign.run_weekday = run_weekday if schedule == SmartCampaign.Schedule.WEEKLY else None
    campaign.run_weekdays_only = bool(run_weekdays_only) and schedule == SmartCampaign.Schedule.DAILY
    once_every = qualification_rule == SmartCampaign.QualificationRule.ONCE_EVERY
    campaign.qualification_period = qualification_period if once_every else None
    campaign.qualification_period_unit = (qualification_period_unit or "") if once_every else ""
    campaign.person_limit_refuse_above = person_limit_refuse_above
    campaign.person_limit_per_run = person_limit_per_run
    # full_clean refuses a "run once" time that has passed (SmartCampaign.run_once_problem).
    campaign.full_clean(exclude=["smart_list"])
    campaign.next_run_at = campaign.next_run_after_edit()
    campaign.save()
    return campaign


def campaign_set_operational(*, campaign: SmartCampaign, operational: bool) -> SmartCampaign:
    """Mark the campaign's SMS operational (exempt from the communication limits,
    and not counted towards them) or marketing; from the next batch of calls on."""
    campaign.operational = operational
    campaign.save(update_fields=["operational", "updated_at"])
    return campaign


def campaign_set_active(*, campaign: SmartCampaign, active: bool) -> SmartCampaign:
    """Activate (only a campaign that could run, and would) or deactivate; recomputes the next run."""
    was_active, campaign.is_active = campaign.is_active, active
    if active:
        problems = campaign.problems()
        # A once-campaign whose time passed while it was inactive would never run.
        once_problem = campaign.run_once_problem()
        if once_problem:
            problems.append(once_problem)
        if problems:
            campaign.is_active = was_active
            raise ValidationError(problems)
    trigger_campaign = campaign.is_trigger_campaign
    if trigger_campaign:
        # Active or inactive, never scheduled: its triggers start its runs.
        campaign.schedule, campaign.run_at, campaign.run_time, campaign.run_weekday = (
            SmartCampaign.Schedule.NONE,
            None,
            None,
            None,
        )
    campaign.next_run_at = campaign.next_run_after_edit()
    with transaction.atomic():
        campaign.save(
            update_fields=[
                "is_active",
                "next_run_at",
                "schedule",
                "run_at",
                "run_time",
                "run_weekday",
                "updated_at",
            ]
        )
        if trigger_campaign and not active:
            # Stops new members at once: what fired before is not run either.
            campaign.firings.close_waiting()
    return campaign
