"""The registry of control-plane actions: `Action` name -> handler.

A handler is `async def handler(call: Call) -> Data`: it reads `call.params`, calls a
service from `call.services`, and returns the `Data` member of the success envelope
(None to leave it out) or raises `ServiceError` for a refusal. The HTTP status of each
error code is decided in `tidings.api.control.envelope.status_for`.
"""

from __future__ import annotations

from tidings.api.control.context import Handler
from tidings.api.control.queues import QUEUE_ACTIONS
from tidings.api.control.rules import RULE_ACTIONS
from tidings.api.control.subscriptions import SUBSCRIPTION_ACTIONS
from tidings.api.control.topics import TOPIC_ACTIONS

ACTIONS: dict[str, Handler] = {
    **QUEUE_ACTIONS,
    **TOPIC_ACTIONS,
    **SUBSCRIPTION_ACTIONS,
    **RULE_ACTIONS,
}


def register(action: str, handler: Handler) -> None:
    """Add (or replace) the handler of an action, for code that cannot edit `ACTIONS`."""
    ACTIONS[action] = handler
