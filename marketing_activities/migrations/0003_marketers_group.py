"""The "Marketers" group: what a marketer usually needs, ready for an administrator
to add people to. Created once; later changes to the group are the administrator's."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Marketers"
EVERYTHING = ("view", "add", "change", "delete")

# app label → model → permissions (Django's four by their action, others by codename).
PERMISSIONS = {
    "marketing_activities": {
        "folder": EVERYTHING,
        "program": EVERYTHING,
        "smsmessage": EVERYTHING,
        "smartcampaign": (*EVERYTHING, "run_smartcampaign"),
        "flowstep": EVERYTHING,
        # Runs and their results are records: seen, never edited.
        "campaignrun": ("view",),
        "runstep": ("view",),
        "runresult": ("view",),
    },
    "smscampaigns": {
        # Import, blocklist and suspend; deleting people is left to administrators.
        "lead": ("view", "add", "change"),
        "smartlist": ("view", "change"),
        # Imports run with the lead permissions; these let a marketer follow them.
        "leadimport": ("view",),
        "leadflagchange": ("view",),
    },
    "vibes": {
        # Vibes owns these; a marketer may mirror the lists again (the sync action).
        "vibeslist": ("view", "change"),
        "acquisitioncampaign": ("view",),
        "subscription": ("view",),
        "subscriptionchange": ("view",),
        "callbackevent": ("view",),
    },
}


def codenames(model, actions):
    return [action if "_" in action else f"{action}_{model}" for action in actions]


def create_marketers(apps, schema_editor):
    using = schema_editor.connection.alias
    # Permissions are created after the last migration of a `migrate`; on a new
    # database they do not exist yet, so create them now.
    for label in PERMISSIONS:
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _created = Group.objects.using(using).get_or_create(name=GROUP)
    for app_label, models in PERMISSIONS.items():
        for model, actions in models.items():
            group.permissions.add(
                *Permission.objects.using(using).filter(
                    content_type__app_label=app_label,
                    content_type__model=model,
                    codename__in=codenames(model, actions),
                )
            )


def remove_marketers(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("marketing_activities", "0002_smartcampaign_run_permission"),
        ("smscampaigns", "0003_lead_imports_and_flag_history"),
        ("vibes", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_marketers, remove_marketers)]
