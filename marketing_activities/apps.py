from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingActivitiesConfig(AppConfig):
    name = "marketing_activities"
    verbose_name = _("Marketing Activities")

    def ready(self):
        from smscampaigns.activities import activities_recorded
        from vibes.callbacks import (
            register_confirmation_handler,
            register_inbound_handler,
            register_receipt_handler,
        )
        from vibes.subscriptions import subscription_changes_written

        from . import (
            campaign_requests,  # noqa: F401  (registers the trigger Campaign is Requested)
            smartlist_fields,  # noqa: F401  (registers the SMS activity filters)
        )
        from .receipts import handle_confirmation, handle_receipt, handle_receipts
        from .replies import reply_match
        from .reporting.rollups import unsubscriptions_follow
        from .tasks import triggers_kick

        register_receipt_handler(handle_receipt, many=handle_receipts)
        register_confirmation_handler(handle_confirmation)
        register_inbound_handler(reply_match)
        # New activities are matched to the active trigger campaigns (triggers.py).
        activities_recorded.connect(triggers_kick, dispatch_uid="marketing_activities.triggers")
        # The SMS figures count the unsubscriptions that follow an SMS (reporting/rollups.py).
        subscription_changes_written.connect(
            unsubscriptions_follow, dispatch_uid="marketing_activities.sms_figures"
        )
