"""Templates, as the client shows them: a variant rendered without sending it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from activities.rendering import render_variant
from definitions.diagnostics import Diagnostic
from definitions.errors import DefinitionError, UnknownRunError
from journeys.client.context import ClientContext

__all__ = ["Templates"]


class Templates:
    """The library's templates, previewed.

    Args:
        context: the client's connections and settings.

    """

    def __init__(self, context: ClientContext) -> None:
        self.context = context

    async def preview(
        self,
        template: str,
        channel: str,
        *,
        recipient: str | None = None,
        profile: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Render a template's variant for a channel, for a stored or a sample profile.

        Raises:
            DefinitionError: the template file is wrong or has no variant for the channel.
            UnknownRunError: the recipient has no profile.
            RenderError: the template cannot be rendered for this profile.

        """
        compiled = self.context.library.template(template)
        if channel not in compiled.variants:
            raise DefinitionError(
                [
                    Diagnostic(
                        str(self.context.library.directory / "templates" / f"{template}.yaml"),
                        0,
                        0,
                        f"template {template!r} has no {channel} variant: expected one of "
                        f"{', '.join(compiled.variants) or 'none'}",
                    )
                ]
            )
        if recipient is not None:
            stored = await self.context.store.profiles.get(recipient)
            if stored is None:
                raise UnknownRunError(f"no profile for recipient {recipient!r}")
            person = stored
        else:
            person = {"id": "sample", **dict(profile or {})}
        names = {
            "customer": person,
            "trigger": dict(data or {}),
            "event": {},
            "journey": {
                "name": "preview",
                "step": "preview",
                "run_id": "",
                "trigger_id": "",
                "message_id": "preview",
                "unsubscribe_url": "https://example.invalid/u",
            },
        }
        return render_variant(compiled, channel, names)
