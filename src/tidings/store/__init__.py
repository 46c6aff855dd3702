"""Persistent state: the store interface and its backends."""

from tidings.store.base import Store

__all__ = ["Store"]
