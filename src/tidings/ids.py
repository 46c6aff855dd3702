"""Identifiers in the shapes the cloud service uses.

Each id is a random per-process prefix followed by a counter: unique across processes
and restarts with overwhelming probability, and far cheaper than reading the system's
random source for every message.
"""

from __future__ import annotations

import itertools
import os

_PREFIX = os.urandom(8).hex().upper()
_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


def request_id() -> str:
    """A request id: 24 upper-case hex characters, like the service's."""
    return f"{_PREFIX[:8]}{next(_counter) & 0xFFFFFFFFFFFFFFFF:016X}"


def message_id() -> str:
    """A message id: 32 upper-case hex characters."""
    return f"{_PREFIX}{next(_counter) & 0xFFFFFFFFFFFFFFFF:016X}"
