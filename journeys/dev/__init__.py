"""``journeys dev``: local catchers for every channel, and the developer inbox.

- :mod:`journeys.dev.run` — the command: Temporal dev server, worker, catchers, inbox page;
- :mod:`journeys.dev.catchers` — SMTP, Twilio-shaped, FCM-shaped and webhook catchers;
- :mod:`journeys.dev.webhooks` — the webhook channel that posts to the catcher;
- :mod:`journeys.dev.http` — the threaded loopback HTTP server under the catchers and the page;
- :mod:`journeys.dev.shapes` — the providers' request shapes (shared with the tests' peers);
- :mod:`journeys.dev.inbox` — caught messages, kept in ``.journeys/inbox.db``;
- :mod:`journeys.dev.page` and :mod:`journeys.dev.text` — the inbox in a browser and a terminal.
"""

from __future__ import annotations

from journeys.dev.inbox import CaughtMessage, Inbox, Origin

__all__ = ["CaughtMessage", "Inbox", "Origin"]
