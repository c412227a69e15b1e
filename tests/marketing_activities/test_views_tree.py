"""The tree pane: start page, lazy children, expanded state, search, and the small forms."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from marketing_activities.models import CampaignRun, Folder, Program, SmartCampaign, SmsMessage
from marketing_activities.views.tree_nodes import SESSION_KEY
from tests.marketing_activities.factories import (
    CampaignRunFactory,
    FlowStepFactory,
    FolderFactory,
    ProgramFactory,
    SmartCampaignFactory,
    SmsMessageFactory,
)
from tests.marketing_activities.ui_helpers import HTMX, url

pytestmark = pytest.mark.django_db


# --- Access ---------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(url("index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_logged_in_user_without_staff_status_gets_403(clerk_client):
    assert clerk_client.get(url("index")).status_code == 403
    assert clerk_client.get(url("folder", FolderFactory().pk)).status_code == 403


def test_the_root_opens_marketing_activities(staff_client):
    response = staff_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == url("index")


def test_logging_in_lands_on_marketing_activities(client, django_user_model):
    django_user_model.objects.create_user("marketer", password="pw-marketer-1", is_staff=True)
    response = client.post(reverse("login"), {"username": "marketer", "password": "pw-marketer-1"})
    assert response["Location"] == url("index")


def test_the_login_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_long_names_are_whole_in_the_titles_of_the_tree_and_the_breadcrumbs(staff_client):
    name = 'Spring "Flash" Sale & ' + "a program name far too long for the tree pane " * 3
    program = ProgramFactory(name=name.strip())
    campaign = SmartCampaignFactory(program=program)
    html = staff_client.get(url("campaign_smart_list", campaign.pk)).content.decode()
    title = f'title="{escape(program.name)}"'
    tree_link = html[html.index(f'id="node-program-{program.pk}"') :].split("</a>")[0]
    breadcrumbs = html[html.index('class="breadcrumbs"') :].split("</nav>")[0]
    assert title in tree_link and title in breadcrumbs


def test_the_language_switcher_posts_to_set_language_with_csrf(staff_client):
    html = staff_client.get(url("index")).content.decode()
    assert f'action="{reverse("set_language")}" method="post"' in html
    assert "csrfmiddlewaretoken" in html
    assert 'hx-headers=\'{"x-csrftoken": "' in html


# --- Full page and partial ------------------------------------------------------------


def test_index_renders_the_full_page_with_the_tree(staff_client):
    FolderFactory(name="Holiday 2026")
    response = staff_client.get(url("index"))
    assert b"<html" in response.content
    assert b'id="tree"' in response.content
    assert b"Holiday 2026" in response.content
    assert b"htmx-2.min.js" in response.content


def test_index_answers_htmx_with_the_detail_partial(staff_client):
    response = staff_client.get(url("index"), headers=HTMX)
    assert b"<html" not in response.content
    assert b'id="detail"' in response.content


def test_a_history_restore_request_gets_the_full_page(staff_client):
    response = staff_client.get(url("index"), headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert b"<html" in response.content


@pytest.mark.parametrize("kind", ["folder", "program"])
def test_node_pages_render_full_and_partial(staff_client, kind):
    program = ProgramFactory()
    obj = program.folder if kind == "folder" else program
    full = staff_client.get(url(kind, obj.pk))
    partial = staff_client.get(url(kind, obj.pk), headers={**HTMX, "HX-Target": "detail"})
    assert b"<html" in full.content and obj.name.encode() in full.content
    assert b"<html" not in partial.content and obj.name.encode() in partial.content


@pytest.mark.parametrize("name", ["folder", "program", "sms_message", "campaign_smart_list"])
def test_unknown_ids_answer_404(staff_client, name):
    assert staff_client.get(url(name, 999999)).status_code == 404


# --- Lazy children and the expanded state -------------------------------------------------


def test_expanding_a_folder_returns_its_row_with_its_children(staff_client):
    folder = FolderFactory(name="Top")
    FolderFactory(parent=folder, name="Sub")
    ProgramFactory(folder=folder, name="Prog")
    response = staff_client.get(url("node_children", "folder", folder.pk), headers=HTMX)
    html = response.content.decode()
    assert "<html" not in html
    assert f'id="node-folder-{folder.pk}"' in html
    assert 'aria-expanded="true"' in html
    assert html.index("Sub") < html.index("Prog")  # subfolders before programs


def test_expanding_a_program_lists_campaigns_then_sms_messages(staff_client):
    program = ProgramFactory()
    SmartCampaignFactory(program=program, name="Zebra campaign")
    SmsMessageFactory(program=program, name="Alpha message")
    html = staff_client.get(url("node_children", "program", program.pk), headers=HTMX).content.decode()
    assert html.index("Zebra campaign") < html.index("Alpha message")


def test_expanding_without_htmx_renders_the_full_page(staff_client):
    folder = FolderFactory()
    response = staff_client.get(url("node_children", "folder", folder.pk))
    assert b"<html" in response.content


def test_leaves_and_unknown_kinds_have_no_children(staff_client):
    campaign = SmartCampaignFactory()
    assert staff_client.get(url("node_children", "campaign", campaign.pk), headers=HTMX).status_code == 404
    assert staff_client.get(url("node_children", "spaceship", 1), headers=HTMX).status_code == 404
    assert staff_client.get(url("node_children", "folder", 999999), headers=HTMX).status_code == 404


def test_the_expanded_state_survives_a_reload(staff_client):
    folder = FolderFactory(name="Kept open")
    ProgramFactory(folder=folder, name="Visible after reload")
    assert b"Visible after reload" not in staff_client.get(url("index")).content
    staff_client.get(url("node_children", "folder", folder.pk), headers=HTMX)
    assert b"Visible after reload" in staff_client.get(url("index")).content
    assert staff_client.session[SESSION_KEY] == [f"folder-{folder.pk}"]


def test_collapsing_forgets_the_node(staff_client):
    folder = FolderFactory()
    ProgramFactory(folder=folder, name="Hidden again")
    staff_client.get(url("node_children", "folder", folder.pk), headers=HTMX)
    response = staff_client.post(url("node_collapse", "folder", folder.pk), headers=HTMX)
    assert b'aria-expanded="false"' in response.content
    assert b"Hidden again" not in staff_client.get(url("index")).content


def test_collapse_without_htmx_redirects(staff_client):
    folder = FolderFactory()
    response = staff_client.post(url("node_collapse", "folder", folder.pk))
    assert response.status_code == 302


def test_reloading_a_node_page_shows_the_tree_open_down_to_it(staff_client):
    top = FolderFactory(name="Outer")
    inner = FolderFactory(parent=top, name="Inner")
    campaign = SmartCampaignFactory(
        program=ProgramFactory(folder=inner, name="The program"), name="Deep campaign"
    )
    html = staff_client.get(url("campaign_flow", campaign.pk)).content.decode()
    tree = html[html.index('id="tree"') : html.index('class="detail-pane"')]
    assert "Deep campaign" in tree
    assert 'aria-current="page"' in tree


@pytest.mark.parametrize("programs", [5, 50])
def test_expanding_a_folder_takes_the_same_queries_whatever_it_holds(
    staff_client, django_assert_max_num_queries, programs
):
    folder = FolderFactory()
    ProgramFactory.create_batch(programs, folder=folder)
    FolderFactory.create_batch(3, parent=folder)
    with django_assert_max_num_queries(8):
        response = staff_client.get(url("node_children", "folder", folder.pk), headers=HTMX)
    assert response.content.count(b'class="tree-node kind-program"') == programs


@pytest.mark.parametrize("campaigns", [5, 50])
def test_the_full_tree_takes_the_same_queries_whatever_is_expanded(
    staff_client, django_assert_max_num_queries, campaigns
):
    program = ProgramFactory()
    SmartCampaignFactory.create_batch(campaigns, program=program)
    staff_client.get(url("node_children", "folder", program.folder.pk), headers=HTMX)
    staff_client.get(url("node_children", "program", program.pk), headers=HTMX)
    with django_assert_max_num_queries(8):
        response = staff_client.get(url("index"))
    assert response.content.count(b'class="tree-node kind-campaign"') == campaigns


def test_a_nodes_menu_loads_when_opened(staff_client):
    folder = FolderFactory()
    html = staff_client.get(url("node_menu", "folder", folder.pk), headers=HTMX).content.decode()
    assert "New folder" in html and "New program" in html and "Move" in html and "Delete" in html
    assert f'hx-get="/marketing-activities/tree/folder/{folder.pk}/rename/"' in html
    program_menu = staff_client.get(url("node_menu", "program", ProgramFactory().pk), headers=HTMX)
    assert b"New smart campaign" in program_menu.content and b"New SMS message" in program_menu.content
    campaign_menu = staff_client.get(url("node_menu", "campaign", SmartCampaignFactory().pk), headers=HTMX)
    assert b"Move" not in campaign_menu.content and b"Rename" in campaign_menu.content


def test_a_nodes_menu_without_htmx_goes_to_the_node(staff_client):
    folder = FolderFactory()
    assert staff_client.get(url("node_menu", "folder", folder.pk))["Location"] == url("folder", folder.pk)
    assert staff_client.get(url("node_menu", "spaceship", 1)).status_code == 404


# --- Search ----------------------------------------------------------------------------


def test_search_shows_matches_with_their_ancestors(staff_client):
    top = FolderFactory(name="Retail")
    program = ProgramFactory(folder=FolderFactory(parent=top, name="Events"), name="Openings")
    SmartCampaignFactory(program=program, name="Stockholm opening")
    SmartCampaignFactory(program=program, name="Berlin opening")
    FolderFactory(name="Unrelated")
    response = staff_client.get(url("index"), {"q": "stockholm"}, headers={**HTMX, "HX-Target": "tree"})
    html = response.content.decode()
    assert "<html" not in html and 'id="tree"' in html
    for name in ("Retail", "Events", "Openings", "Stockholm opening"):
        assert name in html
    assert "Berlin opening" not in html
    assert "Unrelated" not in html
    assert "is-match" in html


def test_search_without_htmx_renders_the_page_with_the_filtered_tree(staff_client):
    FolderFactory(name="Findable")
    FolderFactory(name="Other")
    html = staff_client.get(url("index"), {"q": "findable"}).content.decode()
    assert "<html" in html and "Findable" in html and "Other" not in html
    assert 'value="findable"' in html


def test_search_with_no_match_says_so(staff_client):
    FolderFactory(name="Something")
    response = staff_client.get(url("index"), {"q": "zzz"}, headers={**HTMX, "HX-Target": "tree"})
    assert b"Nothing matches." in response.content


# --- Create ----------------------------------------------------------------------------


def test_the_create_form_renders_as_a_fragment_and_as_a_page(staff_client):
    folder = FolderFactory()
    create = url("node_create", "folder", folder.pk, "program")
    assert b"<html" not in staff_client.get(create, headers=HTMX).content
    assert b"<html" in staff_client.get(create).content


def test_creating_a_top_level_folder(staff_client):
    response = staff_client.post(url("folder_create_top"), {"name": "Q1 2027"}, headers=HTMX)
    folder = Folder.objects.get(name="Q1 2027", parent=None)
    assert response["HX-Redirect"] == url("folder", folder.pk)


def test_creating_a_program_a_campaign_and_an_sms_message(staff_client):
    folder = FolderFactory()
    staff_client.post(url("node_create", "folder", folder.pk, "program"), {"name": "Spring sale"})
    program = Program.objects.get(name="Spring sale", folder=folder)
    response = staff_client.post(url("node_create", "program", program.pk, "campaign"), {"name": "Teaser"})
    campaign = SmartCampaign.objects.get(name="Teaser", program=program)
    assert response["Location"] == url("campaign_smart_list", campaign.pk)
    assert campaign.smart_list.rules == []
    staff_client.post(
        url("node_create", "program", program.pk, "sms"), {"name": "Hi", "text": "Hello {{lead.first_name}}"}
    )
    assert SmsMessage.objects.filter(name="Hi", program=program).exists()


def test_a_duplicate_name_is_refused_next_to_the_name(staff_client):
    folder = FolderFactory()
    ProgramFactory(folder=folder, name="Taken")
    response = staff_client.post(
        url("node_create", "folder", folder.pk, "program"), {"name": "Taken"}, headers=HTMX
    )
    assert response.status_code == 200
    assert b"already holds a program of that name" in response.content
    assert b"<html" not in response.content
    assert Program.objects.filter(name="Taken").count() == 1


def test_an_empty_name_is_refused_and_the_form_comes_back(staff_client):
    response = staff_client.post(url("folder_create_top"), {"name": "  "}, headers=HTMX)
    assert b"This field is required." in response.content
    assert not Folder.objects.exists()


def test_an_sms_message_with_an_unknown_token_is_refused(staff_client):
    program = ProgramFactory()
    response = staff_client.post(
        url("node_create", "program", program.pk, "sms"),
        {"name": "Bad", "text": "Hi {{lead.shoe_size}}"},
        headers=HTMX,
    )
    assert "unknown field “shoe_size”" in response.content.decode()
    assert b'value="Bad"' in response.content  # nothing typed is lost


def test_only_the_right_kinds_can_be_created_inside_a_node(staff_client):
    folder = FolderFactory()
    program = ProgramFactory()
    assert staff_client.get(url("node_create", "folder", folder.pk, "campaign")).status_code == 404
    assert staff_client.get(url("node_create", "program", program.pk, "folder")).status_code == 404
    assert staff_client.get(url("node_create", "folder", 999999, "program")).status_code == 404


# --- Rename, move, delete ------------------------------------------------------------------


def test_renaming_a_campaign(staff_client):
    campaign = SmartCampaignFactory(name="Old")
    response = staff_client.post(url("node_rename", "campaign", campaign.pk), {"name": "New"}, headers=HTMX)
    campaign.refresh_from_db()
    assert campaign.name == "New"
    assert response["HX-Redirect"] == url("campaign_smart_list", campaign.pk)


def test_renaming_to_a_sibling_name_is_refused(staff_client):
    top = FolderFactory(name="A")
    FolderFactory(name="B")
    response = staff_client.post(url("node_rename", "folder", top.pk), {"name": "B"}, headers=HTMX)
    assert b"already a top-level folder of that name" in response.content
    top.refresh_from_db()
    assert top.name == "A"


def test_moving_a_folder_into_another(staff_client):
    moving, target = FolderFactory(), FolderFactory()
    staff_client.post(url("node_move", "folder", moving.pk), {"parent": target.pk}, headers=HTMX)
    moving.refresh_from_db()
    assert moving.parent == target


def test_moving_a_folder_to_the_top_level(staff_client):
    moving = FolderFactory(parent=FolderFactory())
    staff_client.post(url("node_move", "folder", moving.pk), {"parent": ""}, headers=HTMX)
    moving.refresh_from_db()
    assert moving.parent is None


def test_a_folder_cannot_move_into_its_own_subfolder(staff_client):
    top = FolderFactory()
    child = FolderFactory(parent=top)
    response = staff_client.post(url("node_move", "folder", top.pk), {"parent": child.pk}, headers=HTMX)
    assert response.status_code == 200
    assert b"cannot be moved into itself or one of its subfolders" in response.content
    top.refresh_from_db()
    assert top.parent is None


def test_moving_a_program_to_another_folder(staff_client):
    program, target = ProgramFactory(), FolderFactory()
    staff_client.post(url("node_move", "program", program.pk), {"folder": target.pk}, headers=HTMX)
    program.refresh_from_db()
    assert program.folder == target


def test_moving_to_an_unknown_folder_is_a_form_error(staff_client):
    program = ProgramFactory()
    response = staff_client.post(url("node_move", "program", program.pk), {"folder": 999999}, headers=HTMX)
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content


def test_campaigns_and_messages_cannot_be_moved(staff_client):
    assert staff_client.get(url("node_move", "campaign", SmartCampaignFactory().pk)).status_code == 404


def test_a_non_empty_folder_cannot_be_deleted(staff_client):
    program = ProgramFactory()
    response = staff_client.post(url("node_delete", "folder", program.folder.pk), headers=HTMX)
    assert response.status_code == 200
    assert b"is not empty" in response.content
    assert Folder.objects.filter(pk=program.folder.pk).exists()


def test_deleting_an_empty_folder_goes_to_its_parent(staff_client):
    parent = FolderFactory()
    folder = FolderFactory(parent=parent)
    response = staff_client.post(url("node_delete", "folder", folder.pk), headers=HTMX)
    assert not Folder.objects.filter(pk=folder.pk).exists()
    assert response["HX-Redirect"] == url("folder", parent.pk)


def test_deleting_without_htmx_redirects(staff_client):
    folder = FolderFactory()
    response = staff_client.post(url("node_delete", "folder", folder.pk))
    assert response.status_code == 302
    assert response["Location"] == url("index")


def test_deleting_a_campaign_deletes_its_smart_list(staff_client):
    campaign = SmartCampaignFactory()
    smart_list_pk = campaign.smart_list.pk
    staff_client.post(url("node_delete", "campaign", campaign.pk), headers=HTMX)
    assert not SmartCampaign.objects.filter(pk=campaign.pk).exists()
    from smscampaigns.models import SmartList

    assert not SmartList.objects.filter(pk=smart_list_pk).exists()


def test_an_sms_message_used_by_a_flow_cannot_be_deleted(staff_client):
    step = FlowStepFactory()
    response = staff_client.post(url("node_delete", "sms", step.sms_message.pk), headers=HTMX)
    assert b"is used by the flow of" in response.content
    assert SmsMessage.objects.filter(pk=step.sms_message.pk).exists()


def blocked_nodes():
    """One node of each kind that cannot be deleted, with the reason's telling words."""
    program = ProgramFactory(name="Full program")
    step = FlowStepFactory(campaign__program=program, campaign__name="Teaser campaign")
    running = CampaignRunFactory(status=CampaignRun.Status.RUNNING).campaign
    return [
        ("folder", program.folder.pk, "is not empty: move or delete its folders and programs first."),
        ("program", program.pk, "is not empty: delete its campaigns and SMS messages first."),
        ("campaign", running.pk, "is running; wait until the run has finished."),
        ("sms", step.sms_message.pk, "is used by the flow of “Teaser campaign”; remove it there first."),
    ]


def test_a_nodes_menu_says_why_it_cannot_be_deleted_and_offers_no_delete(staff_client):
    for kind, pk, reason in blocked_nodes():
        html = staff_client.get(url("node_menu", kind, pk), headers=HTMX).content.decode()
        assert "Cannot be deleted" in html and reason in html, kind
        assert "/delete/" not in html, kind
        assert "Rename" in html, kind  # the rest of the menu is still there


def test_a_menu_offers_delete_for_a_node_that_can_go(staff_client):
    for kind, node in [
        ("folder", FolderFactory()),
        ("program", ProgramFactory()),
        ("campaign", SmartCampaignFactory()),
        ("sms", SmsMessageFactory()),
    ]:
        html = staff_client.get(url("node_menu", kind, node.pk), headers=HTMX).content.decode()
        assert f'hx-get="/marketing-activities/tree/{kind}/{node.pk}/delete/"' in html, kind
        assert "Cannot be deleted" not in html, kind


def test_the_delete_form_of_a_node_that_cannot_go_says_why_without_a_delete_button(staff_client):
    for kind, pk, reason in blocked_nodes():
        response = staff_client.get(url("node_delete", kind, pk), headers=HTMX)
        html = response.content.decode()
        assert response.status_code == 200
        assert "cannot be deleted" in html and reason in html, kind
        assert 'type="submit"' not in html and "This cannot be undone." not in html, kind
        assert "Close" in html, kind


def test_the_delete_form_without_htmx_is_a_page_that_says_why(staff_client):
    program = ProgramFactory(name="Full program")
    html = staff_client.get(url("node_delete", "folder", program.folder.pk)).content.decode()
    form = html[html.index('class="small-form') :].split("</form>")[0]
    assert "<html" in html and "is not empty" in form and 'type="submit"' not in form


def test_a_nodes_menu_asks_whether_it_can_go_in_two_queries_at_most(staff_client, django_assert_num_queries):
    folder = FolderFactory()
    for programs in (1, 20):
        ProgramFactory.create_batch(programs - folder.programs.count(), folder=folder)
        # Session, user, the folder, then "any subfolder?" and "any program?".
        with django_assert_num_queries(5):
            staff_client.get(url("node_menu", "folder", folder.pk), headers=HTMX)


def test_the_delete_confirmation_renders_as_a_fragment(staff_client):
    response = staff_client.get(url("node_delete", "folder", FolderFactory().pk), headers=HTMX)
    assert b"<html" not in response.content
    assert b"This cannot be undone." in response.content


def test_tree_forms_post_with_htmx_need_the_csrf_token(client, django_user_model, marketers_group):
    from django.test import Client

    user = django_user_model.objects.create_user("m", password="pw-m-12345", is_staff=True)
    user.groups.add(marketers_group)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(url("folder_create_top"), {"name": "X"}, headers=HTMX).status_code == 403
    strict.get(url("index"))  # sets the CSRF cookie, as the page does
    token = strict.cookies["csrftoken"].value
    response = strict.post(url("folder_create_top"), {"name": "X"}, headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert Folder.objects.filter(name="X").exists()
