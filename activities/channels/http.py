"""What the HTTP channels share: turning responses into delivery errors."""

from __future__ import annotations

import httpx

from definitions.errors import PermanentDeliveryError, RetryableDeliveryError

__all__ = ["raise_for_delivery", "retry_after"]

_RETRYABLE = {408, 425, 429}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds, if any."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def raise_for_delivery(response: httpx.Response, what: str, detail: str = "") -> None:
    """Raise the delivery error a non-2xx response means: 408/425/429/5xx retry, others not.

    Redirects are never followed, so a 3xx is permanent too; its ``Location`` is named.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    error = f"{what} answered {status}" + (f": {detail}" if detail else "")
    if 300 <= status < 400:
        location = response.headers.get("location", "")
        shown = location if len(location) <= 200 else location[:200] + "…"
        error += f"; redirect to {shown!r} not followed" if location else "; not followed"
    if status in _RETRYABLE or status >= 500:
        raise RetryableDeliveryError(error, retry_after=retry_after(response))
    raise PermanentDeliveryError(error)
