"""Vibes' news of what became of a run's calls, handed to the runner.

A receipt finds its result row by the reference in the SMS's callback URL
(runner/references.py). Confirmations find their Subscribe rows by number.
"""

from vibes.callbacks import ConfirmationNews, DeliveryReceipt

from .runner.followup import result_apply_receipt, results_follow_confirmation
from .runner.references import result_id_of


def handle_receipt(receipt: DeliveryReceipt) -> bool:
    result_id = result_id_of(receipt.reference)
    if result_id is None:
        return False
    return result_apply_receipt(
        result_id=result_id,
        status=receipt.status,
        message_id=receipt.message_id,
        reason=receipt.reason,
        occurred_at=receipt.occurred_at,
    )


def handle_confirmation(news: ConfirmationNews) -> None:
    results_follow_confirmation(news)
