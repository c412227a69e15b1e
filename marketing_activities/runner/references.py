"""The reference of an SMS's result row in its callback URL (`ref=r<id>`).

Every SMS carries a callback URL naming its row, so Vibes' delivery receipt
finds the row even when the runner died before it could record Vibes'
answer. Written here when the SMS is sent, read here when the receipt comes.
"""

from django.conf import settings

PREFIX = "r"
MAX_DIGITS = 18  # a BIGINT's ids, and nothing that could overflow one


def receipt_url(result_id: int) -> str | None:
    """The callback URL for the SMS of this row; None when no receipts are asked for."""
    base = settings.VIBES_DELIVERY_RECEIPT_URL
    if not base:
        return None
    return f"{base}{'&' if '?' in base else '?'}ref={PREFIX}{result_id}"


def result_id_of(reference: str) -> int | None:
    """The row a callback URL's `ref` names; None for a reference of anything else."""
    reference = reference or ""
    number = reference.removeprefix(PREFIX)
    if (
        not reference.startswith(PREFIX)
        or not (number.isascii() and number.isdigit())
        or len(number) > MAX_DIGITS
    ):
        return None
    return int(number)
