"""The callback types each Vibes API registers, as the contract names them.

The Platform's `config/callbacks` takes the types of its callbackRequest-*
schemas; Connect's `/api/v1/callbacks` those of its CallbackCreate. The
app registers the ones it reads (`vibes.registration`), and the simulator
refuses any other, as Vibes does.
"""

PLATFORM_TYPES = frozenset(
    {
        "ack_participant_added",
        "ack_participant_changed",
        "company_participant_added",
        "company_participant_changed",
        "device_added",
        "device_removed",
        "device_updated",
        "event_processed",
        "person_added",
        "person_updated",
        "subscription_added",
        "subscription_list_added",
        "subscription_list_updated",
        "subscription_removed",
        "unmatched_message_received",
        "wallet_item_install",
        "wallet_item_remove",
    }
)
CONNECT_TYPES = frozenset({"delivery_receipt", "inbound_sms"})
