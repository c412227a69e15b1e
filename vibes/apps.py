from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VibesConfig(AppConfig):
    name = "vibes"
    verbose_name = "Vibes"

    def ready(self):
        from . import conf  # noqa: F401  (resets the client when VIBES_* settings change)
        from . import smartlist_fields  # noqa: F401  (registers the Vibes list membership filter)
