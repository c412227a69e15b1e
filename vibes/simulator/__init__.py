"""A local Vibes: the Platform and Connect operations this project uses, with
real state, on loopback.

It serves the same paths, headers, Basic auth and response shapes as the
Vibes contract files, keeps lists, acquisition campaigns, persons (keyed by
number), subscriptions and SMS in memory, and posts callbacks back to the app
the way Vibes does: `subscription_added` when the simulated phone replies
"Y", `subscription_removed` on an unsubscribe or a "STOP", delivery receipts
for SMS sent with a `callback_url`, and the texts phones send. It starts with
the lists, campaigns and subscribers its caller gives it, and nothing else.

No Django here: `manage.py vibes_simulator` and the test fixtures start it.
The modules, one thing each:

- `core`: `VibesSimulator`, which starts and stops the pieces below, holds
  the settings, and takes each API request from its arrival to its answer;
- `server`: the HTTP server, keep-alive, each request stamped with the time
  it reached the machine;
- `protocol`: the API's paths, error bodies and request checks;
- `state`: what Vibes holds for the company (lists, campaigns, persons,
  subscriptions, pending participants, SMS, inbound texts, registrations),
  and a list's subscribers in pages;
- `platform`, `connect`, `registrations`: the operations of the Platform
  API, of Connect, and of Platform callback registration (with test events);
- `phone`: what the simulated phones text (replies, STOP, keywords), and
  confirmations that expire;
- `faults`: the fault switches (5xx, 429 above a rate counted by arrival,
  latency, hangs, failed receipts);
- `scheduler`, `poster`: delayed jobs, and callbacks posted from background
  threads so that API answers never wait for the app;
- `control`: the control and inspection endpoints under `/_simulator/`.

The request log records for each request whether it was processed, so tests
can prove that nothing was done twice.
"""

from .core import VibesSimulator

__all__ = ["VibesSimulator"]
