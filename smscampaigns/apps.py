from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmsCampaignsConfig(AppConfig):
    name = "smscampaigns"
    verbose_name = _("People")

    def ready(self):
        from . import lead_triggers  # noqa: F401  (registers Person is Created and Data Value Changes)
