from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingActivitiesConfig(AppConfig):
    name = "marketing_activities"
    verbose_name = _("Marketing Activities")

    def ready(self):
        from vibes.callbacks import (
            register_confirmation_handler,
            register_inbound_handler,
            register_receipt_handler,
        )

        from . import smartlist_fields  # noqa: F401  (registers the SMS activity filters)
        from .receipts import handle_confirmation, handle_receipt
        from .replies import reply_match

        register_receipt_handler(handle_receipt)
        register_confirmation_handler(handle_confirmation)
        register_inbound_handler(reply_match)
