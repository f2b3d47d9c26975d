"""``/unsubscribe``: the link of every marketing email, and its RFC 8058 one-click POST.

Link scanners and mail security gateways fetch every URL of a message, so opening the link
(GET, and HEAD, which is refused) changes nothing: it shows what would be unsubscribed
and a button. Only a POST whose form body says ``List-Unsubscribe=One-Click`` — what a
mail client sends for one-click unsubscribe, and what the page's button sends —
unsubscribes. The signed token in the query string is the only credential.

A person's browser (``Accept: text/html``) is answered in HTML, refusals included (a link
cut short or altered is a 400 page); programs keep the API's JSON errors.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from definitions.errors import InvalidTokenError
from journeys.client import JourneysClient
from journeys.consent import verify_unsubscribe
from journeys.server.errors import RequestError
from journeys.server.pages import confirm_page, done_page, error_page
from journeys.server.routing import Route

__all__ = ["router"]

router = APIRouter(tags=["Preferences"], route_class=Route)

Token = Annotated[str, Query(min_length=1, description="The signed token of the link.")]

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_HTML = {"text/html": {"schema": {"type": "string"}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The token is not one this server signed.", "content": _HTML},
    404: {
        "description": "Unsubscribe links are not enabled (no signing secret).",
        "content": _HTML,
    },
    503: {},
}


class _Refused(RequestError):
    """A refused link, with what a person reading the page should be told."""

    def __init__(self, status: int, problem: str, human: str) -> None:
        super().__init__(status, [problem])
        self.human = human


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "").lower()


def _topic(request: Request, token: str) -> str | None:
    """The topic the token unsubscribes from (None: all marketing), changing nothing."""
    journeys: JourneysClient = request.app.state.client
    if not journeys.signing_secret:
        raise _Refused(
            404,
            "token: unsubscribe links are not enabled on this server",
            "Unsubscribe links are not enabled on this server.",
        )
    try:
        return verify_unsubscribe(journeys.signing_secret, token)[1]
    except InvalidTokenError:
        raise _Refused(
            400,
            "token: not a valid unsubscribe token (this server did not sign it)",
            "This unsubscribe link is not valid: it was cut short or altered.",
        ) from None


def _multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The text fields of a ``multipart/form-data`` body (RFC 7578), by the stdlib's parser."""
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    fields = []
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.append((name, payload.decode("utf-8", "replace").strip()))
    return fields


async def _one_click(request: Request) -> str | None:
    """The ``List-Unsubscribe`` field of the form body, if it has one.

    RFC 8058 lets the mail client send it as ``multipart/form-data`` or form-urlencoded.
    """
    body = await request.body()
    if not body:
        return None
    content_type = request.headers.get("content-type", "")
    media = content_type.partition(";")[0].strip().lower()
    if media == _FORMS[0]:
        fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=50)
    elif media == _FORMS[1]:
        fields = _multipart(content_type, body)
    else:
        raise _Refused(
            415,
            f"content-type: expected {' or '.join(_FORMS)}, found {content_type or 'none'}",
            "Nothing was changed: use the button of the unsubscribe page.",
        )
    return dict(fields).get("List-Unsubscribe")


def _refusal(request: Request, refused: _Refused) -> HTMLResponse:
    """The refusal as a page for a browser; for a program, the API's JSON error."""
    if _wants_html(request):
        return error_page(refused.status_code, refused.human)
    raise refused


@router.get(
    "/unsubscribe",
    operation_id="unsubscribe_link",
    responses=_RESPONSES,
    response_class=HTMLResponse,
)
async def unsubscribe_link(request: Request, token: Token) -> HTMLResponse:
    """The page of an unsubscribe link: what would be unsubscribed, and a button. No change."""
    try:
        return confirm_page(_topic(request, token))
    except _Refused as refused:
        return _refusal(request, refused)


@router.post(
    "/unsubscribe",
    operation_id="unsubscribe_one_click",
    responses=_RESPONSES,
    response_class=HTMLResponse,
    openapi_extra={
        "requestBody": {
            "description": "RFC 8058: the field List-Unsubscribe=One-Click.",
            "content": {
                media: {
                    "schema": {
                        "type": "object",
                        "required": ["List-Unsubscribe"],
                        "properties": {"List-Unsubscribe": {"const": "One-Click"}},
                    }
                }
                for media in _FORMS
            },
        }
    },
)
async def unsubscribe_one_click(request: Request, token: Token) -> HTMLResponse:
    """Unsubscribe: a mail client's one-click POST, or the button of the link's page."""
    try:
        topic = _topic(request, token)
        if await _one_click(request) != "One-Click":
            raise _Refused(
                422,
                "List-Unsubscribe: expected One-Click in the form body (RFC 8058)",
                "Nothing was changed: use the button of the unsubscribe page.",
            )
    except _Refused as refused:
        return _refusal(request, refused)
    journeys: JourneysClient = request.app.state.client
    await journeys.unsubscribe(token)
    return done_page(topic)
