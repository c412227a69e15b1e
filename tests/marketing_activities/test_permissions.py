"""Who may do what: every Marketing Activities URL and every admin action, for
each kind of user, answers as the matrix below says (the README's
"Permissions" table in test form).

Anonymous visitors go to the login page; a user without a permission the
request needs gets a 403 page naming that permission; a user with all of
them gets the page or the redirect (200 or 302). A URL or an admin action
added without an entry here fails the test that lists them.
"""

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from marketing_activities import urls as marketing_urls
from marketing_activities.models import CampaignRun, FlowStep, Outcome
from smscampaigns.permissions import permission_label
from tests.marketers import marketers_group
from tests.marketing_activities import ui_helpers
from tests.marketing_activities.factories import (
    CommunicationLimitsFactory,
    FlowStepFactory,
    FolderFactory,
    ProgramFactory,
    RunBatchFactory,
    RunResultFactory,
    RunStepFactory,
    SampleSendFactory,
    SmartCampaignFactory,
    SmsMessageFactory,
    SmsReplyFactory,
    TestNumberFactory,
    TriggerFiringFactory,
)
from tests.smscampaigns.factories import LeadFlagChangeFactory, LeadImportFactory
from tests.vibes.factories import CallbackEventFactory, SubscriptionChangeFactory

pytestmark = pytest.mark.django_db

APPS = ("marketing_activities", "smscampaigns", "vibes")
MA = "marketing_activities"


def perm(codename: str, app: str = MA) -> str:
    return f"{app}.{codename}"


# --- The marketing interface ----------------------------------------------------------------------

MODEL_OF_KIND = {"folder": "folder", "program": "program", "campaign": "smartcampaign", "sms": "smsmessage"}


@dataclass
class World:
    """One of everything the URLs name, made fresh for every test."""

    folder: object
    empty_folder: object
    program: object
    message: object
    campaign: object
    step: object
    run: object

    def node(self, kind):
        return {
            "folder": self.folder,
            "program": self.program,
            "campaign": self.campaign,
            "sms": self.message,
        }[kind]


@dataclass
class Case:
    url: str
    method: str
    args: object  # World -> URL arguments
    needs: tuple
    data: object = field(default=None)  # World -> POST data (or GET query)
    note: str = ""

    @property
    def id(self):
        return "-".join(filter(None, [self.url, self.method, self.note]))


def kind_cases(url, kinds, method, action, *, data=None, extra=()):
    return [
        Case(
            url,
            method,
            lambda w, kind=kind: (kind, w.node(kind).pk),
            (perm(f"{action}_{MODEL_OF_KIND[kind]}"), *extra),
            data,
            kind,
        )
        for kind in kinds
    ]


VIEW_CAMPAIGN = perm("view_smartcampaign")
CHANGE_CAMPAIGN = perm("change_smartcampaign")
RUN_CAMPAIGN = perm("run_smartcampaign")
VIEW_RUNS = perm("view_campaignrun")
VIEW_LEADS = perm("view_lead", "smscampaigns")
ALL_KINDS = ("folder", "program", "campaign", "sms")


def campaign_pk(w):
    return (w.campaign.pk,)


def step_args(w):
    return (w.campaign.pk, w.step.pk)


SCHEDULE_DAILY = {"action": "save", "qualification_rule": "once", "schedule": "daily", "run_time": "09:00"}

CASES = [
    Case("index", "GET", lambda w: (), (perm("view_folder"),)),
    *kind_cases("node_children", ("folder", "program"), "GET", "view"),
    *kind_cases("node_collapse", ("folder", "program"), "POST", "view"),
    *kind_cases("node_menu", ALL_KINDS, "GET", "view"),
    Case("folder_create_top", "GET", lambda w: (), (perm("add_folder"),)),
    Case("folder_create_top", "POST", lambda w: (), (perm("add_folder"),), lambda w: {"name": "Autumn"}),
    *[
        Case(
            "node_create",
            method,
            lambda w, parent=parent, child=child: (parent, w.node(parent).pk, child),
            (perm(f"add_{MODEL_OF_KIND[child]}"),),
            lambda w: {"name": "Fresh", "text": "Hello"},
            child,
        )
        for parent, child in (
            ("folder", "folder"),
            ("folder", "program"),
            ("program", "campaign"),
            ("program", "sms"),
        )
        for method in ("GET", "POST")
    ],
    *kind_cases("node_rename", ALL_KINDS, "GET", "change"),
    *kind_cases("node_rename", ALL_KINDS, "POST", "change", data=lambda w: {"name": "Renamed"}),
    *kind_cases("node_move", ("folder", "program"), "GET", "change"),
    *kind_cases(
        "node_move",
        ("folder", "program"),
        "POST",
        "change",
        data=lambda w: {"folder": w.empty_folder.pk, "parent": ""},
    ),
    *kind_cases("node_delete", ALL_KINDS, "GET", "delete"),
    *kind_cases("node_delete", ALL_KINDS, "POST", "delete"),
    Case("folder", "GET", lambda w: (w.folder.pk,), (perm("view_folder"),)),
    Case("program", "GET", lambda w: (w.program.pk,), (perm("view_program"),)),
    Case(
        "program",
        "POST",
        lambda w: (w.program.pk,),
        (perm("view_program"), perm("change_program")),
        lambda w: {"name": "offer", "value": "20% off", "add_token": ""},
        "my-tokens",
    ),
    Case("sms_message", "GET", lambda w: (w.message.pk,), (perm("view_smsmessage"),)),
    Case(
        "sms_message",
        "POST",
        lambda w: (w.message.pk,),
        (perm("view_smsmessage"), perm("change_smsmessage")),
        lambda w: {"name": "Teaser", "text": "Hi there"},
    ),
    Case(
        "sms_message",
        "POST",
        lambda w: (w.message.pk,),
        (perm("view_smsmessage"), perm("change_smsmessage")),
        # No test number chosen: refused with a message, nothing sent, whoever asks.
        lambda w: {"name": "Teaser", "text": "Hi there", "send_sample": "1"},
        "sample",
    ),
    Case("campaign", "GET", campaign_pk, (VIEW_CAMPAIGN,)),
    Case("campaign_smart_list", "GET", campaign_pk, (VIEW_CAMPAIGN,)),
    Case(
        "campaign_smart_list",
        "POST",
        campaign_pk,
        (VIEW_CAMPAIGN, CHANGE_CAMPAIGN),
        lambda w: {
            "action": "save",
            "rule_count": "1",
            "rule-0-field": "country",
            "rule-0-op": "is",
            "rule-0-value": "SE",
            "logic_mode": "all",
        },
    ),
    Case("campaign_flow", "GET", campaign_pk, (VIEW_CAMPAIGN,)),
    Case(
        "flow_step_add",
        "POST",
        campaign_pk,
        (VIEW_CAMPAIGN, CHANGE_CAMPAIGN),
        lambda w: {"action": "send_sms"},
    ),
    Case(
        "flow_steps_reorder",
        "POST",
        campaign_pk,
        (VIEW_CAMPAIGN, CHANGE_CAMPAIGN),
        lambda w: {"step": [w.step.pk]},
    ),
    Case(
        "flow_step_update",
        "POST",
        step_args,
        (VIEW_CAMPAIGN, CHANGE_CAMPAIGN),
        lambda w: {"sms_message": w.message.pk, "vibes_list": w.step.vibes_list_id},
    ),
    Case("flow_step_move", "POST", step_args, (VIEW_CAMPAIGN, CHANGE_CAMPAIGN), lambda w: {"position": 0}),
    Case("flow_step_delete", "POST", step_args, (VIEW_CAMPAIGN, CHANGE_CAMPAIGN)),
    Case("campaign_schedule", "GET", campaign_pk, (VIEW_CAMPAIGN,)),
    Case(
        "campaign_schedule",
        "POST",
        campaign_pk,
        (VIEW_CAMPAIGN, CHANGE_CAMPAIGN),
        lambda w: SCHEDULE_DAILY,
        "save",
    ),
    # An active campaign starts runs on its schedule: activating it is running it.
    Case(
        "campaign_schedule",
        "POST",
        campaign_pk,
        (VIEW_CAMPAIGN, CHANGE_CAMPAIGN, RUN_CAMPAIGN),
        lambda w: {"action": "activate"},
        "activate",
    ),
    Case(
        "campaign_schedule",
        "POST",
        campaign_pk,
        (VIEW_CAMPAIGN, CHANGE_CAMPAIGN),
        lambda w: {"action": "deactivate"},
        "deactivate",
    ),
    Case("campaign_run_now", "GET", campaign_pk, (VIEW_CAMPAIGN, RUN_CAMPAIGN)),
    Case("campaign_run_now", "POST", campaign_pk, (VIEW_CAMPAIGN, RUN_CAMPAIGN)),
    Case("campaign_abort", "GET", campaign_pk, (VIEW_CAMPAIGN, RUN_CAMPAIGN)),
    Case("campaign_abort", "POST", campaign_pk, (VIEW_CAMPAIGN, RUN_CAMPAIGN)),
    Case("campaign_results", "GET", campaign_pk, (VIEW_CAMPAIGN, VIEW_RUNS), lambda w: {"run": w.run.pk}),
    Case(
        "campaign_results_export", "GET", campaign_pk, (VIEW_CAMPAIGN, VIEW_RUNS), lambda w: {"run": w.run.pk}
    ),
    # The SMS dashboards: figures of runs, so seeing runs, and seeing what the dashboard is of.
    *[
        Case(f"{kind}_dashboard{page}", "GET", args, (*needs, VIEW_RUNS), lambda w: {"figure": "sent"})
        for kind, args, needs in (
            ("message", lambda w: (w.message.pk,), (perm("view_smsmessage"),)),
            ("campaign", campaign_pk, (VIEW_CAMPAIGN,)),
            ("program", lambda w: (w.program.pk,), (perm("view_program"),)),
            ("vibes_list", lambda w: (w.step.vibes_list_id,), (perm("view_vibeslist", "vibes"),)),
            ("installation", lambda w: (), ()),
        )
        for page in ("", "_people", "_export")
    ],
    Case("campaign_qualified_people", "GET", campaign_pk, (VIEW_CAMPAIGN, VIEW_LEADS)),
    Case("campaign_qualified_people_export", "GET", campaign_pk, (VIEW_CAMPAIGN, VIEW_LEADS)),
    Case("campaign_members", "GET", campaign_pk, (VIEW_CAMPAIGN, VIEW_RUNS, VIEW_LEADS)),
    Case("campaign_members_export", "GET", campaign_pk, (VIEW_CAMPAIGN, VIEW_RUNS, VIEW_LEADS)),
]


def permissions_of(app_labels, *prefixes):
    """Every permission of the apps whose codename starts with one of `prefixes`."""
    found = Permission.objects.filter(content_type__app_label__in=app_labels).select_related("content_type")
    return {f"{p.content_type.app_label}.{p.codename}" for p in found if p.codename.startswith(prefixes)}


def make_roles():
    """A logged-in client and the permissions it holds, for each kind of staff user.

    "view", "change" and "run" hold the view permissions of every model of the
    three apps, and the change permissions or the run permission on top;
    "marketer" is a member of the Marketers group the data migration creates."""
    group = marketers_group()
    kinds = {
        "staff": set(),
        "view": permissions_of(APPS, "view_"),
        "change": permissions_of(APPS, "view_", "change_"),
        "run": permissions_of(APPS, "view_") | {RUN_CAMPAIGN},
        "marketer": {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        },
    }
    roles = {}
    for name, held in kinds.items():
        user = get_user_model().objects.create_user(f"user-{name}", is_staff=True)
        if name == "marketer":
            user.groups.add(group)
        else:
            user.user_permissions.set(
                Permission.objects.filter(
                    codename__in=[p.split(".")[1] for p in held], content_type__app_label__in=APPS
                )
            )
        client = Client()
        client.force_login(user)
        roles[name] = (client, held)
    return roles


def make_world():
    folder = FolderFactory(name="Holiday")
    program = ProgramFactory(folder=folder, name="Black Friday")
    message = SmsMessageFactory(program=program, name="Teaser")
    campaign = SmartCampaignFactory(program=program, name="Teaser send")
    step = FlowStepFactory(campaign=campaign, position=0, sms_message=message)
    run_step = RunStepFactory(
        run__campaign=campaign, run__status=CampaignRun.Status.COMPLETED, counts={"sent": 1}
    )
    result = RunResultFactory(run_step=run_step, outcome=Outcome.SENT)
    SmsReplyFactory(result=result)
    # Something on every other admin page too.
    RunBatchFactory(run_step=run_step)
    SubscriptionChangeFactory()
    CallbackEventFactory()
    LeadImportFactory()
    LeadFlagChangeFactory()
    CallbackEventFactory(event_type="", outcome="unreadable", raw_body="<receipt/>")
    FlowStepFactory(subscribe=True)
    SampleSendFactory(sms_message=message)
    TestNumberFactory()
    CommunicationLimitsFactory(per_day=1)
    TriggerFiringFactory(campaign=campaign)  # and its activity
    return World(folder, FolderFactory(name="Archive"), program, message, campaign, step, run_step.run)


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker):
    """The world and the users, made once for the module in a transaction that
    is rolled back at its end (as TestCase.setUpTestData does); each test, and
    each request in it, is undone on its own (see `answer`)."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield SimpleNamespace(world=make_world(), roles=make_roles())
        transaction.set_rollback(True)


@pytest.fixture
def world(shared, settings):
    settings.RUNNER_BACKGROUND = "inline"  # a run started here would work on commit: never, in a test
    return shared.world


@pytest.fixture
def roles(shared):
    return shared.roles


class _Undo(Exception):
    def __init__(self, status, location, content):
        self.answer = (status, location, content)


def answer(client, method, path, data):
    """The status, redirect and body of a request, with whatever it changed undone
    (the next kind of user finds the same world)."""
    try:
        with transaction.atomic():
            if method == "GET":
                response = client.get(path, data or {})
            else:
                response = client.post(path, data or {})
            content = b"".join(response.streaming_content) if response.streaming else response.content
            raise _Undo(response.status_code, response.get("Location", ""), content.decode())
    except _Undo as undo:
        return undo.answer


def check_matrix(roles, method, path, data, needs, login_url):
    """Every kind of user gets what `needs` says; returns the answers that differ."""
    wrong = []
    status, location, _content = answer(Client(), method, path, data)
    if status != 302 or not location.startswith(login_url):
        wrong.append(f"anonymous: {status} {location}, expected a redirect to {login_url}")
    for name, (client, held) in roles.items():
        status, location, content = answer(client, method, path, data)
        missing = [p for p in needs if p not in held]
        if missing:
            label = escape(permission_label(missing[0]))
            if status != 403 or "data-error-message" not in content or label not in content:
                wrong.append(f"{name}: {status}, expected 403 naming {missing[0]}")
        elif status not in (200, 302):
            wrong.append(f"{name}: {status}, expected 200 or 302")
    return wrong


def test_every_marketing_activities_url_has_an_entry_in_the_matrix():
    names = {pattern.name for pattern in marketing_urls.urlpatterns}
    assert names == {case.url for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_marketing_activities_url_answers_as_the_matrix_says(case, world, roles):
    path = reverse(f"marketing_activities:{case.url}", args=case.args(world))
    data = case.data(world) if case.data else None
    assert not check_matrix(roles, case.method, path, data, case.needs, reverse("login"))


def test_the_marketers_group_may_do_everything_in_marketing_activities(roles):
    _client, held = roles["marketer"]
    assert {p for case in CASES for p in case.needs} <= held


@pytest.mark.parametrize(
    "changelist",
    [
        "admin:smscampaigns_activity_changelist",
        "admin:marketing_activities_triggerfiring_changelist",
        "admin:vibes_inboundmessage_changelist",
    ],
)
def test_the_marketers_group_sees_activities_firings_and_replies_in_the_admin(changelist, world, roles):
    client, _held = roles["marketer"]
    assert client.get(reverse(changelist)).status_code == 200
    staff, _held = roles["staff"]
    assert staff.get(reverse(changelist)).status_code == 403


# --- The admin's actions ---------------------------------------------------------------------------

# (model, action) → the permissions it needs. Django's own delete_selected needs
# the model's delete permission (see delete_needs).
ADMIN_ACTIONS = {
    ("marketing_activities.smartcampaign", "run_now"): (VIEW_CAMPAIGN, RUN_CAMPAIGN),
    ("marketing_activities.smartcampaign", "preview_audience"): (VIEW_CAMPAIGN,),
    ("marketing_activities.smartcampaign", "activate"): (VIEW_CAMPAIGN, RUN_CAMPAIGN),
    ("marketing_activities.smartcampaign", "deactivate"): (
        VIEW_CAMPAIGN,
        perm("change_smartcampaign", "marketing_activities"),
    ),
    ("marketing_activities.campaignrun", "resume"): (VIEW_RUNS, RUN_CAMPAIGN),
    ("marketing_activities.campaignrun", "retry_uncertain"): (VIEW_RUNS, RUN_CAMPAIGN),
    ("marketing_activities.campaignrun", "abort"): (VIEW_RUNS, RUN_CAMPAIGN),
    **{
        ("smscampaigns.lead", action): (
            perm("view_lead", "smscampaigns"),
            perm("change_lead", "smscampaigns"),
        )
        for action in ("blocklist", "unblocklist", "suspend_marketing", "resume_marketing")
    },
    # Requesting a campaign runs its flow for the people.
    ("smscampaigns.lead", "request_campaign"): (perm("view_lead", "smscampaigns"), RUN_CAMPAIGN),
    ("smscampaigns.leadimport", "start_again"): (
        perm("view_leadimport", "smscampaigns"),
        perm("add_lead", "smscampaigns"),
        perm("change_lead", "smscampaigns"),
    ),
    ("vibes.vibeslist", "sync_from_vibes"): (
        perm("view_vibeslist", "vibes"),
        perm("change_vibeslist", "vibes"),
    ),
}


def delete_needs(model):
    opts = model._meta
    return (
        perm(f"view_{opts.model_name}", opts.app_label),
        perm(f"delete_{opts.model_name}", opts.app_label),
    )


def admin_actions():
    """(model, action name) of every action of every admin page of the three apps."""
    found = [
        (model, action.name)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in APPS
        for action in model_admin._get_base_actions()
    ]
    return sorted(found, key=lambda pair: (pair[0]._meta.label_lower, pair[1]))


ACTIONS = admin_actions()


def test_every_admin_action_has_an_entry_in_the_matrix():
    listed = {(model._meta.label_lower, name) for model, name in ACTIONS if name != "delete_selected"}
    assert listed == set(ADMIN_ACTIONS)


@pytest.mark.parametrize(
    ("model", "action"), ACTIONS, ids=[f"{model._meta.label_lower}-{name}" for model, name in ACTIONS]
)
def test_every_admin_action_answers_as_the_matrix_says(model, action, world, roles, vibes_simulator):
    opts = model._meta
    needs = delete_needs(model) if action == "delete_selected" else ADMIN_ACTIONS[(opts.label_lower, action)]
    path = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    data = {"action": action, ACTION_CHECKBOX_NAME: [model.objects.first().pk], "index": 0}
    assert not check_matrix(roles, "POST", path, data, needs, reverse("login"))


# --- The 403 page --------------------------------------------------------------------------------


def test_a_refusal_names_the_missing_permission_in_the_products_words(world, roles):
    client, _held = roles["change"]
    response = client.get(reverse("marketing_activities:campaign_run_now", args=[world.campaign.pk]))
    assert response.status_code == 403
    content = response.content.decode()
    assert "You cannot run smart campaigns" in content
    assert "Marketing Activities | smart campaign | Can run smart campaign" in content


def test_a_refused_htmx_request_carries_the_message_for_the_banner(world, roles):
    client, _held = roles["view"]
    response = client.post(
        reverse("marketing_activities:flow_step_add", args=[world.campaign.pk]),
        {"action": FlowStep.Action.SEND_SMS},
        headers=ui_helpers.HTMX,
    )
    assert response.status_code == 403
    assert (
        "data-error-message>You cannot change smart campaigns: that needs the permission “"
        in response.content.decode()
    )
    assert world.campaign.flow_steps.count() == 1


def test_a_refused_admin_action_says_which_permission_it_needs(world, roles):
    client, _held = roles["change"]
    response = client.post(
        reverse("admin:marketing_activities_smartcampaign_changelist"),
        {"action": "run_now", ACTION_CHECKBOX_NAME: [world.campaign.pk], "index": 0},
    )
    assert response.status_code == 403
    assert "You cannot use the action “Run now”" in response.content.decode()
    assert not CampaignRun.objects.exclude(pk=world.run.pk).exists()


# --- The installation's settings in the admin ------------------------------------------------------


def test_quiet_hours_are_seen_with_view_and_changed_with_change_quiet_hours_only(world, roles):
    """Administrators' settings: the Marketers group has neither permission."""
    path = reverse("admin:marketing_activities_quiethours_change", args=[1])
    change = {"start": "09:00", "end": "20:00", "countries-TOTAL_FORMS": "0", "countries-INITIAL_FORMS": "0"}
    expected = {
        "staff": (403, 403),
        "view": (200, 403),
        "change": (200, 302),
        "run": (200, 403),
        "marketer": (403, 403),
    }
    answers = {
        name: (answer(client, "GET", path, None)[0], answer(client, "POST", path, change)[0])
        for name, (client, _held) in roles.items()
    }
    assert answers == expected
    assert answer(Client(), "GET", path, None)[1].startswith(reverse("login"))
    _client, held = roles["marketer"]
    assert not {perm("view_quiethours"), perm("change_quiethours")} & held


# --- What the interface offers -------------------------------------------------------------------
# The server's check is what counts; the screens only leave out what would be refused.


def page(roles, role, name, *args, headers=None):
    client, _held = roles[role]
    response = client.get(reverse(f"marketing_activities:{name}", args=args), headers=headers or {})
    assert response.status_code == 200
    return response.content.decode()


def test_a_viewer_gets_no_tree_menus_and_no_new_folder_button(world, roles):
    viewer = page(roles, "view", "index")
    marketer = page(roles, "marketer", "index")
    assert 'class="tree-menu"' not in viewer and 'class="tree-menu"' in marketer
    new_folder = reverse("marketing_activities:folder_create_top")
    assert new_folder not in viewer and new_folder in marketer


def test_a_nodes_menu_offers_only_what_the_user_may_do(world, roles):
    changer = page(roles, "change", "node_menu", "folder", world.folder.pk, headers=ui_helpers.HTMX)
    marketer = page(roles, "marketer", "node_menu", "folder", world.folder.pk, headers=ui_helpers.HTMX)
    for words in ("Rename", "Move"):
        assert words in changer and words in marketer
    for words in ("New folder", "New program"):
        assert words not in changer and words in marketer
    # The folder holds a program: who may delete is told why it cannot be deleted.
    assert "Delete" not in changer and "Cannot be deleted" not in changer
    assert "Cannot be deleted" in marketer


def test_a_viewer_sees_the_flow_without_the_palette_the_step_tools_or_live_dropdowns(world, roles):
    viewer = page(roles, "view", "campaign_flow", world.campaign.pk)
    changer = page(roles, "change", "campaign_flow", world.campaign.pk)
    for html in (viewer, changer):
        assert f'id="flow-step-{world.step.pk}"' in html
    assert "data-palette-action" not in viewer and "data-palette-action" in changer
    assert f"{world.step.pk}/delete/" not in viewer and f"{world.step.pk}/delete/" in changer
    assert 'class="drag-handle"' not in viewer and 'class="drag-handle"' in changer
    assert (
        '<fieldset class="plain" disabled>' in viewer and '<fieldset class="plain" disabled>' not in changer
    )


def test_the_schedule_tab_offers_run_now_and_activate_only_with_the_run_permission(world, roles):
    changer = page(roles, "change", "campaign_schedule", world.campaign.pk)
    marketer = page(roles, "marketer", "campaign_schedule", world.campaign.pk)
    run_url = reverse("marketing_activities:campaign_run_now", args=[world.campaign.pk])
    assert run_url not in changer and run_url in marketer
    assert 'value="activate"' not in changer and 'value="activate"' in marketer
    assert "Save schedule" in changer
    assert "Save schedule" not in page(roles, "view", "campaign_schedule", world.campaign.pk)


def test_a_viewer_cannot_edit_the_smart_list_or_the_sms_message(world, roles):
    smart_list = page(roles, "view", "campaign_smart_list", world.campaign.pk)
    message = page(roles, "view", "sms_message", world.message.pk)
    assert "Save smart list" not in smart_list and "Add rule" not in smart_list
    assert "Save SMS message" not in message and "data-insert-token" not in message
    assert "Save smart list" in page(roles, "change", "campaign_smart_list", world.campaign.pk)
    assert "Save SMS message" in page(roles, "change", "sms_message", world.message.pk)


def test_the_results_tab_is_shown_only_to_who_may_see_runs(world, roles, django_user_model):
    user = django_user_model.objects.create_user("campaigns-only", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_smartcampaign"))
    client = Client()
    client.force_login(user)
    html = client.get(
        reverse("marketing_activities:campaign_flow", args=[world.campaign.pk])
    ).content.decode()
    assert 'id="tab-schedule"' in html and 'id="tab-results"' not in html
    assert 'id="tab-results"' in page(roles, "view", "campaign_flow", world.campaign.pk)


@pytest.mark.parametrize("campaigns", [5, 50])
def test_a_marketers_permissions_cost_two_queries_whatever_the_page_shows(
    world, roles, django_assert_max_num_queries, campaigns
):
    """The user's and the groups' permissions are read once per request, however many
    checks the page makes (8 queries for a superuser, see test_views_tree.py)."""
    client, _held = roles["marketer"]
    program = ProgramFactory(folder=world.folder)
    SmartCampaignFactory.create_batch(campaigns, program=program)
    client.get(
        reverse("marketing_activities:node_children", args=["folder", world.folder.pk]),
        headers=ui_helpers.HTMX,
    )
    client.get(
        reverse("marketing_activities:node_children", args=["program", program.pk]), headers=ui_helpers.HTMX
    )
    with django_assert_max_num_queries(8 + 2):
        response = client.get(reverse("marketing_activities:index"))
    assert response.content.count(b'class="tree-node kind-campaign"') == campaigns
    assert response.content.count(b'class="tree-menu"') >= campaigns
