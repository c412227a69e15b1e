"""Marketing Activities: every node and every tab has its own URL."""

from django.urls import path

from .views import (
    campaign,
    campaign_members,
    dashboard,
    detail,
    flow_editor,
    qualified_people,
    results,
    smart_list,
    sms_message,
    tree,
    tree_edit,
)

app_name = "marketing_activities"


def dashboard_urls(prefix: str, kind: str) -> list:
    """An SMS dashboard of one scope: its page, the people behind a figure, and their CSV."""
    scope = {"kind": kind}
    return [
        path(prefix, dashboard.dashboard, scope, name=f"{kind}_dashboard"),
        path(f"{prefix}people/", dashboard.dashboard_people, scope, name=f"{kind}_dashboard_people"),
        path(f"{prefix}people.csv", dashboard.dashboard_export, scope, name=f"{kind}_dashboard_export"),
    ]


urlpatterns = [
    path("", tree.index, name="index"),
    # The tree: lazy children, collapse, and the small forms that change it.
    path("tree/<slug:kind>/<int:pk>/children/", tree.node_children, name="node_children"),
    path("tree/<slug:kind>/<int:pk>/collapse/", tree.node_collapse, name="node_collapse"),
    path("tree/<slug:kind>/<int:pk>/menu/", tree.node_menu, name="node_menu"),
    path("tree/new-folder/", tree_edit.node_create, {"child_kind": "folder"}, name="folder_create_top"),
    path("tree/<slug:kind>/<int:pk>/new/<slug:child_kind>/", tree_edit.node_create, name="node_create"),
    path("tree/<slug:kind>/<int:pk>/rename/", tree_edit.node_rename, name="node_rename"),
    path("tree/<slug:kind>/<int:pk>/move/", tree_edit.node_move, name="node_move"),
    path("tree/<slug:kind>/<int:pk>/delete/", tree_edit.node_delete, name="node_delete"),
    # Nodes.
    path("folders/<int:pk>/", detail.folder, name="folder"),
    path("programs/<int:pk>/", detail.program, name="program"),
    path("sms-messages/<int:pk>/", sms_message.sms_message, name="sms_message"),
    # A campaign's tabs.
    path("campaigns/<int:pk>/", campaign.campaign, name="campaign"),
    path("campaigns/<int:pk>/smart-list/", smart_list.smart_list, name="campaign_smart_list"),
    path("campaigns/<int:pk>/flow/", flow_editor.flow, name="campaign_flow"),
    path("campaigns/<int:pk>/flow/steps/", flow_editor.step_add, name="flow_step_add"),
    path("campaigns/<int:pk>/flow/order/", flow_editor.steps_reorder, name="flow_steps_reorder"),
    path("campaigns/<int:pk>/flow/steps/<int:step_pk>/", flow_editor.step_update, name="flow_step_update"),
    path("campaigns/<int:pk>/flow/steps/<int:step_pk>/move/", flow_editor.step_move, name="flow_step_move"),
    path(
        "campaigns/<int:pk>/flow/steps/<int:step_pk>/delete/",
        flow_editor.step_delete,
        name="flow_step_delete",
    ),
    path("campaigns/<int:pk>/schedule/", campaign.schedule, name="campaign_schedule"),
    path("campaigns/<int:pk>/run/", campaign.run_now, name="campaign_run_now"),
    path("campaigns/<int:pk>/abort/", campaign.abort, name="campaign_abort"),
    path("campaigns/<int:pk>/results/", results.results, name="campaign_results"),
    path("campaigns/<int:pk>/results/export.csv", results.results_export, name="campaign_results_export"),
    # SMS dashboards (issue 18).
    *dashboard_urls("sms-messages/<int:pk>/dashboard/", "message"),
    *dashboard_urls("campaigns/<int:pk>/dashboard/", "campaign"),
    *dashboard_urls("programs/<int:pk>/dashboard/", "program"),
    *dashboard_urls("sms-performance/vibes-lists/<int:pk>/", "vibes_list"),
    *dashboard_urls("sms-performance/", "installation"),
    # Who a batch campaign would take now, and who entered a trigger campaign (issue 18).
    path(
        "campaigns/<int:pk>/qualified-people/",
        qualified_people.qualified_people,
        name="campaign_qualified_people",
    ),
    path(
        "campaigns/<int:pk>/qualified-people/export.csv",
        qualified_people.qualified_people_export,
        name="campaign_qualified_people_export",
    ),
    path("campaigns/<int:pk>/members/", campaign_members.members, name="campaign_members"),
    path(
        "campaigns/<int:pk>/members/export.csv",
        campaign_members.members_export,
        name="campaign_members_export",
    ),
]
