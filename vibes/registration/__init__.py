"""This installation's callbacks at Vibes: register them, list them, test them.

Vibes posts an event only for the callback types registered with it, so the
product registers its callbacks URL for every type it reads: the keys of
`vibes.callbacks.APPLIERS`, so a type added there is registered by the next
`register`. Each type goes where Vibes offers it: subscription and
acquisition events on the Platform (`config/callbacks`), delivery receipts
and inbound SMS on Connect (`/api/v1/callbacks`).

The modules: `url` (the URL to register, with its credentials),
`overview` (what we want registered, and what is), `register` (making it
so), `testing` (Vibes' test events, and whether they arrive). This module
is their face, for the admin and `manage.py vibes_callbacks`.
"""

from .overview import CONNECT, PLATFORM, Overview, Row, callbacks_overview
from .register import Change, callbacks_register
from .testing import ARRIVED, TestResult, callbacks_test
from .url import CallbacksNotConfigured, callbacks_url

__all__ = [
    "ARRIVED",
    "CONNECT",
    "PLATFORM",
    "CallbacksNotConfigured",
    "Change",
    "Overview",
    "Row",
    "TestResult",
    "callbacks_overview",
    "callbacks_register",
    "callbacks_test",
    "callbacks_url",
]
