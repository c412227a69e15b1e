"""Typed errors of the Vibes client.

Every error keeps the HTTP status, the raw body and the parsed `errors`
envelope, so callers branch on the class (or on `code`, e.g.
"MDNHASCONFIRMATIONBLOCK") and never on message text. No error ever carries
the Vibes password or the Authorization header.
"""


class VibesError(Exception):
    """Base class: `status` (int or None), `body`, `errors`, `code`, `message`."""

    def __init__(self, message: str = "", *, status: int | None = None, body: str = "", errors=None):
        self.message = message
        self.status = status
        self.body = body or ""
        self.errors: list[dict] = list(errors or [])
        first = self.errors[0].get("code") if self.errors else None
        self.code = "" if first is None else str(first)
        super().__init__(message)

    def __str__(self):
        text = self.message or self.__class__.__name__
        if self.status is not None and f"HTTP {self.status}" not in text:
            text += f" (HTTP {self.status})"
        if self.code and self.code not in text:
            text += f" [{self.code}]"
        return text

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(message={self.message!r}, status={self.status!r}, code={self.code!r})"
        )


class VibesBadRequest(VibesError):
    """400: Vibes refused the request as malformed (e.g. a number not in E.164 form)."""


class VibesAuthError(VibesError):
    """401/403: wrong credentials or no permission for this company."""


class VibesNotFound(VibesError):
    """404: unknown id, or a person who is not subscribed (Vibes does not say which)."""


class VibesConflict(VibesError):
    """409: e.g. already subscribed."""


class VibesUnprocessable(VibesError):
    """422: a business state such as MDNHASCONFIRMATIONBLOCK; record it, never retry."""


class VibesRateLimited(VibesError):
    """429 on every attempt: Vibes refused the request before processing it."""


class VibesServerError(VibesError):
    """5xx on a GET, PUT or DELETE, still after the retries."""


class VibesTimeout(VibesError):
    """A safe request (GET, PUT, DELETE) got no answer in time on every attempt."""


class VibesConnectionError(VibesError):
    """No usable connection on any attempt (refused, unresolvable, connect timeout...).

    For a POST this means it surely never reached Vibes; a GET, PUT or
    DELETE may also end here after a connection lost mid-answer.
    """


class VibesUncertain(VibesError):
    """A POST whose fate is unknown: it may have been processed.

    Raised on a read timeout, a 5xx or a connection dropped after the request
    was sent. The client never resends it: Vibes takes no idempotency key, so
    a resend could text a person twice.
    """


class VibesCallWithheld(VibesError):
    """The caller withdrew its go-ahead (see `transport.calls_only_while`):
    the request was never sent."""


class VibesPagingUnsupported(VibesError):
    """Vibes did not answer a page of a list's subscribers.

    The contract documents the list's `subscribers` operation as a search for
    one subscriber (by number, person key or external id) and publishes no
    paging for it; a Vibes that ignores `page` and `page_size` answers
    something other than a page, or the same page again.
    """
