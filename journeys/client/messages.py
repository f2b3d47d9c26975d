"""The message log, as the client reads it: one message, or those of a recipient or a run."""

from __future__ import annotations

from definitions.errors import UnknownRunError
from definitions.values import require_id
from journeys.client.context import ClientContext
from journeys.client.runs import LOOKUP_LIMIT, Runs
from journeys.store import MessageRecord

__all__ = ["Messages"]


class Messages:
    """The messages journeys sent, with their states.

    Args:
        context: the client's connections and settings.
        runs: where a run named by its run id or workflow id is found.

    """

    def __init__(self, context: ClientContext, runs: Runs) -> None:
        self.context = context
        self.runs = runs

    async def message_status(self, message_id: str) -> MessageRecord:
        """A message from the log: its channel, address, state, reason and provider id.

        Raises:
            UnknownRunError: no message has that id.

        """
        require_id(message_id, "message id", limit=LOOKUP_LIMIT)
        found = await self.context.store.messages.get(message_id)
        if found is None:
            raise UnknownRunError(f"unknown message {message_id!r}")
        return found

    async def messages(
        self, *, recipient: str | None = None, run: str | None = None, limit: int = 100
    ) -> list[MessageRecord]:
        """Messages of a recipient and/or a run (run id or workflow id), newest first."""
        workflow_id = run_id = None
        if recipient is not None:
            require_id(recipient, "recipient")
        if run is not None:
            require_id(run, "run", limit=LOOKUP_LIMIT)
            found = await self.runs.find(run)
            workflow_id, run_id = found.workflow_id, found.run_id
        return await self.context.store.messages.find(
            recipient_id=recipient, workflow_id=workflow_id, run_id=run_id, limit=limit
        )
