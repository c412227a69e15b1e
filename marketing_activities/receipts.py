"""Vibes' news of what became of a run's calls, handed to the runner.

The runner sends every SMS with a callback URL carrying `ref=r<result id>`,
so a receipt finds its result row even when the runner died before it could
record Vibes' answer. Confirmations find their Subscribe rows by number.
"""

from vibes.callbacks import ConfirmationNews, DeliveryReceipt

from .runner.followup import result_apply_receipt, results_follow_confirmation


def handle_receipt(receipt: DeliveryReceipt) -> bool:
    reference = receipt.reference or ""
    number = reference[1:]
    if not reference.startswith("r") or not (number.isascii() and number.isdigit()) or len(number) > 18:
        return False
    return result_apply_receipt(
        result_id=int(number),
        status=receipt.status,
        message_id=receipt.message_id,
        reason=receipt.reason,
        occurred_at=receipt.occurred_at,
    )


def handle_confirmation(news: ConfirmationNews) -> None:
    results_follow_confirmation(news)
