"""What the callbacks tell other apps, and how those apps listen.

Delivery receipts belong to whoever sent the SMS, and the news of a
confirmation to whoever asked for it; `vibes` must not import the campaign
runner, so they register handlers: `register_receipt_handler(fn)` gets a
`DeliveryReceipt` per new receipt, `register_confirmation_handler(fn)` a
`ConfirmationNews` per subscription or participant event that says what
became of a request to subscribe a number. Replies are the same:
`register_inbound_handler(fn)` gets each new `InboundMessage`, to take it as
the reply to an SMS it sent.

A receipt handler may also give its batch form (`many=`): applied off the
request, the waiting receipts are handed over a batch at a time, so that
hundreds of them cost a few statements rather than a transaction each.

Handlers run inside the request that stores the callback, in the same
transaction, so they must be quick. A handler that raises makes the callback
answer 503: nothing is stored, and Vibes delivers the event again later.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

logger = logging.getLogger("vibes.callbacks")

# Delivery receipt statuses (connect-openapi.yml `SmsMessageResponse.status`,
# and the words carriers use for a failure): Vibes accepted the SMS, the
# handset got it, or it never will.
RECEIPT_ACCEPTED = frozenset({"accepted", "queued", "sent", "submitted", "enroute", "buffered"})
RECEIPT_DELIVERED = frozenset({"delivered"})
RECEIPT_FAILED = frozenset({"failed", "undeliverable", "undelivered", "rejected", "expired"})
RECEIPT_STATUSES = RECEIPT_ACCEPTED | RECEIPT_DELIVERED | RECEIPT_FAILED


@dataclass(frozen=True)
class DeliveryReceipt:
    """A Connect delivery receipt; `reference` is the callback URL's `ref` parameter, or "".

    `status` is one of RECEIPT_STATUSES; `reason` the carrier's reason for a
    failure (with its code), or "".
    """

    message_id: str
    mdn: str
    status: str
    reference: str
    occurred_at: datetime | None
    reason: str = ""

    @property
    def delivered(self) -> bool:
        return self.status in RECEIPT_DELIVERED

    @property
    def failed(self) -> bool:
        return self.status in RECEIPT_FAILED


@dataclass(frozen=True)
class ConfirmationNews:
    """What became of a request to subscribe a number to a list: from a
    `subscription_added`, or an `ack_participant_*` event.

    `outcome` is "subscribed", "pending", "declined" or "expired"; `status`
    Vibes' own word. `since`: the request it answers was made no later than
    this (a `subscription_added`'s opt-in date, a participant's participation
    date), so requests made after it are not concerned. `at`: when it
    happened, as far as the event tells (never later than its arrival).
    """

    mdn: str
    vibes_list_id: int
    outcome: str
    status: str
    since: datetime
    at: datetime


class HandlerFailed(Exception):
    """A receipt or confirmation handler failed: answer 503, so that Vibes delivers the event again."""


class InboundHandlerFailed(Exception):
    pass


class Listeners:
    """The handlers registered for one kind of news."""

    def __init__(self, kind: str, failure: type[Exception]):
        self.kind = kind
        self.failure = failure
        self._handlers: list[Callable] = []
        self._many: dict[Callable, Callable] = {}

    def register(self, fn: Callable, *, many: Callable | None = None) -> Callable:
        if fn not in self._handlers:
            self._handlers.append(fn)
        if many is not None:
            self._many[fn] = many
        return fn

    def unregister(self, fn: Callable) -> None:
        if fn in self._handlers:
            self._handlers.remove(fn)
        self._many.pop(fn, None)

    def tell(self, news) -> bool:
        """Give every handler the news; True when one says it was theirs. One that raises: `failure`."""
        taken = False
        for handler in list(self._handlers):
            try:
                taken = bool(handler(news)) or taken
            except Exception as error:
                logger.exception("Vibes %s handler %r failed", self.kind, handler)
                raise self.failure from error
        return taken

    def tell_many(self, news: list) -> list[bool]:
        """Give every handler these pieces of news, in their order: through its batch
        form where it has one, else one at a time. For each, True when one handler
        says it was theirs. One that raises: `failure` (and none of the batch counts)."""
        taken = [False] * len(news)
        for handler in list(self._handlers):
            many = self._many.get(handler)
            try:
                answers = many(news) if many else [handler(one) for one in news]
            except Exception as error:
                logger.exception("Vibes %s handler %r failed on a batch", self.kind, handler)
                raise self.failure from error
            taken = [bool(answer) or was for answer, was in zip(answers, taken, strict=True)]
        return taken


receipt_listeners = Listeners("delivery receipt", HandlerFailed)
confirmation_listeners = Listeners("confirmation", HandlerFailed)
inbound_listeners = Listeners("inbound message", InboundHandlerFailed)


def register_receipt_handler(
    fn: Callable[[DeliveryReceipt], bool],
    *,
    many: Callable[[list[DeliveryReceipt]], list[bool]] | None = None,
) -> Callable[[DeliveryReceipt], bool]:
    """Call `fn(receipt)` for every new delivery receipt; usable as a decorator.

    A handler returns True when the receipt matched an SMS it knows of; a
    receipt no handler matches is stored as unmatched. `many(receipts)`, if
    given, does the same for a batch, in order (a receipt may follow another
    for the same SMS), and returns one such answer per receipt.
    """
    return receipt_listeners.register(fn, many=many)


def unregister_receipt_handler(fn: Callable[[DeliveryReceipt], bool]) -> None:
    receipt_listeners.unregister(fn)


def register_confirmation_handler(
    fn: Callable[[ConfirmationNews], None],
) -> Callable[[ConfirmationNews], None]:
    """Call `fn(news)` for every subscription or participant event that says
    what became of a request to subscribe a number; usable as a decorator.

    The event's effect on subscriptions does not depend on the handlers: an
    event that arrives late for the subscription (superseded) still tells
    what became of the request.
    """
    return confirmation_listeners.register(fn)


def unregister_confirmation_handler(fn: Callable[[ConfirmationNews], None]) -> None:
    confirmation_listeners.unregister(fn)


def register_inbound_handler(fn: Callable) -> Callable:
    """Call `fn(message)` for every newly stored InboundMessage; usable as a decorator.

    A handler returns True when it took the message as the reply to an SMS it sent.
    """
    return inbound_listeners.register(fn)


def unregister_inbound_handler(fn: Callable) -> None:
    inbound_listeners.unregister(fn)
