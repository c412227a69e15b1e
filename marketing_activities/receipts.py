"""Vibes' news of what became of a run's calls, handed to the runner.

A receipt finds its result row by the reference in the SMS's callback URL
(runner/references.py). Confirmations find their Subscribe rows by number.
"""

from vibes.callbacks import ConfirmationNews, DeliveryReceipt

from .runner.followup import (
    ReceiptForRow,
    result_apply_receipt,
    results_apply_receipts,
    results_follow_confirmation,
)
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


def handle_receipts(receipts: list[DeliveryReceipt]) -> list[bool]:
    """`handle_receipt` for a batch of receipts, in their order, in a few statements."""
    named = [(at, result_id_of(receipt.reference), receipt) for at, receipt in enumerate(receipts)]
    named = [(at, result_id, receipt) for at, result_id, receipt in named if result_id is not None]
    answers = results_apply_receipts(
        [
            ReceiptForRow(result_id, receipt.status, receipt.message_id, receipt.reason, receipt.occurred_at)
            for _at, result_id, receipt in named
        ]
    )
    matched = [False] * len(receipts)
    for (at, _result_id, _receipt), answer in zip(named, answers, strict=True):
        matched[at] = answer
    return matched


def handle_confirmation(news: ConfirmationNews) -> None:
    results_follow_confirmation(news)
