from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingActivitiesConfig(AppConfig):
    name = "marketing_activities"
    verbose_name = _("Marketing Activities")
