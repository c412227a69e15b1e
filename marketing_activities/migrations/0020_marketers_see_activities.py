"""The Marketers group sees the records trigger campaigns and replies leave:
people's activities, the trigger campaigns they fired, and the messages people
sent in. Added to the group as 0003 made it; a group an administrator removed
is not made again."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Marketers"
SEEN = {
    "smscampaigns": ("activity",),
    "marketing_activities": ("triggerfiring",),
    "vibes": ("inboundmessage",),
}


def permissions(apps, using):
    Permission = apps.get_model("auth", "Permission")
    for label in SEEN:
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using, apps=apps)
    for app_label, models in SEEN.items():
        yield from Permission.objects.using(using).filter(
            content_type__app_label=app_label,
            codename__in=[f"view_{model}" for model in models],
        )


def add_to_marketers(apps, schema_editor):
    using = schema_editor.connection.alias
    group = apps.get_model("auth", "Group").objects.using(using).filter(name=GROUP).first()
    if group is not None:
        group.permissions.add(*permissions(apps, using))


def remove_from_marketers(apps, schema_editor):
    using = schema_editor.connection.alias
    group = apps.get_model("auth", "Group").objects.using(using).filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*permissions(apps, using))


class Migration(migrations.Migration):
    dependencies = [
        ("marketing_activities", "0019_trigger_firing_admin_indexes"),
        ("smscampaigns", "0009_activity_admin_indexes"),
        ("vibes", "0015_newest_first_admin_indexes"),
    ]

    operations = [migrations.RunPython(add_to_marketers, remove_from_marketers)]
