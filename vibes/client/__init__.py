"""The Vibes HTTP client: the Platform API (lists, participants, persons,
subscriptions, callback registrations) and the Connect message API (SMS), on
one `requests.Session`.

No Django here: `vibes.conf.get_client()` builds the client from settings.
The modules: `transport` (the session, the rate limiter, retries, typed
errors), `platform` and `connect` (the operations of each API).
"""

from .connect import ConnectOperations
from .platform import PlatformOperations


class VibesClient(PlatformOperations, ConnectOperations):
    """Blocking, thread-safe client for the Vibes operations this project uses."""

    def __repr__(self):
        return (
            f"<VibesClient platform_url={self.platform_url!r} connect_url={self.connect_url!r} "
            f"company_key={self.company_key!r} username={self.username!r}>"
        )


__all__ = ["VibesClient"]
