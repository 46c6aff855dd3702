"""What a control-plane action handler receives, and the type every handler has."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.api.control.params import Params
from tidings.auth.keys import AccessKey
from tidings.services.queues import QueueService
from tidings.services.rules import RuleService
from tidings.services.topics import TopicService

# The JSON `Data` member of a success envelope; None leaves `Data` out.
Data = object

OK_DATA = {"Code": 200, "Message": "operation success", "Success": True}


@dataclass(frozen=True, slots=True)
class Services:
    """The services the control plane calls: the same instances the data plane uses.

    To serve more actions, add the service here as a field with a default of None, pass
    it where `tidings.app` builds `ControlApp`, and register the handlers in
    `tidings.api.control.actions`.
    """

    queues: QueueService
    topics: TopicService
    region: str
    account_id: str
    rules: RuleService | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated control-plane call."""

    services: Services
    params: Params
    key: AccessKey
    # The MNS endpoint as the client reached it, e.g. http://127.0.0.1:9101 (TopicUrl).
    base: str
    request_id: str


Handler = Callable[[Call], Awaitable[Data]]
