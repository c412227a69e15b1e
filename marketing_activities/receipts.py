"""Delivery receipts: Vibes' word that an SMS of a run went out.

The runner sends every SMS with a callback URL carrying `ref=r<result id>`,
so a receipt finds its result row even when the runner died before it could
record Vibes' answer.
"""

from .runner.executor import apply_receipt


def handle_receipt(receipt) -> bool:
    reference = receipt.reference or ""
    if not reference.startswith("r") or not reference[1:].isdigit():
        return False
    return apply_receipt(result_id=int(reference[1:]), status=receipt.status, message_id=receipt.message_id)
