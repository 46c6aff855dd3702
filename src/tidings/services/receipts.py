"""Receipt handles: opaque to clients, a (queue, message, receive generation) triple to us.

Handles use the URL-safe Base64 alphabet without padding, so they survive clients that
put them in a query string without percent-encoding.
"""

from __future__ import annotations

import base64
import binascii

from tidings.errors import receipt_handle_error


def encode_handle(queue_id: int, seq: int, receipt_gen: int) -> str:
    """The handle for the `receipt_gen`-th receive of message `seq` of queue `queue_id`."""
    raw = f"{queue_id}:{seq}:{receipt_gen}".encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_handle(handle: str) -> tuple[int, int, int]:
    """(queue_id, seq, receipt_gen) of a handle; `ReceiptHandleError` when it is not ours."""
    try:
        text = handle.strip()
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        queue_id, seq, gen = (int(part) for part in raw.split(":"))
    except (binascii.Error, UnicodeError, ValueError):
        raise receipt_handle_error(handle) from None
    if queue_id <= 0 or seq <= 0 or gen <= 0:
        raise receipt_handle_error(handle)
    return queue_id, seq, gen
