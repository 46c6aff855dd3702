"""Identifiers in the shapes the cloud service uses."""

from __future__ import annotations

import os


def request_id() -> str:
    """A request id: 24 upper-case hex characters, like the service's."""
    return os.urandom(12).hex().upper()


def message_id() -> str:
    """A message id: 32 upper-case hex characters, unique with overwhelming probability."""
    return os.urandom(16).hex().upper()
