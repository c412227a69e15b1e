from django.apps import AppConfig


class VibesConfig(AppConfig):
    name = "vibes"
    verbose_name = "Vibes"

    def ready(self):
        from . import (
            conf,  # noqa: F401  (resets the client when VIBES_* settings change)
            smartlist_fields,  # noqa: F401  (registers the Vibes list membership filter)
            triggers,  # noqa: F401  (registers the Vibes list triggers)
        )
