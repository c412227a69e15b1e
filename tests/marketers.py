"""The "Marketers" group of the data migration, for tests that log a marketer in."""

import importlib
import pkgutil
from types import SimpleNamespace

from django.apps import apps
from django.contrib.auth.models import Group
from django.db import connection

import marketing_activities.migrations


def marketers_group() -> Group:
    """The group, as the data migration creates it.

    A transactional test (browser, live server) empties every table when it
    ends, and nothing but that migration creates the group: run its function
    again when the group is gone."""
    group = Group.objects.filter(name="Marketers").first()
    if group is None:
        (name,) = [
            module.name
            for module in pkgutil.iter_modules(marketing_activities.migrations.__path__)
            if module.name.endswith("_marketers_group")
        ]
        editor = SimpleNamespace(connection=connection)
        importlib.import_module(f"marketing_activities.migrations.{name}").create_marketers(apps, editor)
        # Later migrations add to the group (…_marketers_see_activities).
        for module in pkgutil.iter_modules(marketing_activities.migrations.__path__):
            later = importlib.import_module(f"marketing_activities.migrations.{module.name}")
            if hasattr(later, "add_to_marketers"):
                later.add_to_marketers(apps, editor)
        group = Group.objects.get(name="Marketers")
    return group
