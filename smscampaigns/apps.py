from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmsCampaignsConfig(AppConfig):
    name = "smscampaigns"
    verbose_name = _("People")
