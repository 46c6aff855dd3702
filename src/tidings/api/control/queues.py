"""Queue actions of `mns-open` 2022-01-19: parse, call `QueueService`, render `Data`."""

from __future__ import annotations

from typing import Any, Literal

from tidings.api.control.context import OK_DATA, Call, Data, Handler
from tidings.api.control.params import Params, as_integer, enabled, refuse_unsupported
from tidings.errors import ServiceError, invalid_argument
from tidings.models import DeadLetterPolicy, Queue, QueueCounts
from tidings.services.queues import Keep, QueueService
from tidings.services.validation import check_queue_name

# Parameter name -> QueueAttributes field, for every integer attribute.
_INTEGER_ATTRIBUTES = {
    "DelaySeconds": "delay_seconds",
    "MaximumMessageSize": "maximum_message_size",
    "MessageRetentionPeriod": "message_retention_period",
    "VisibilityTimeout": "visibility_timeout",
    "PollingWaitSeconds": "polling_wait_seconds",
}
# Without a MaxReceiveCount, a dead-letter policy moves a message after this many
# receives (the same default as `tidings queue create --dead-letter-queue`).
DEFAULT_MAX_RECEIVE_COUNT = 3
# Listing walks the whole name index to report Total; this is the store's page size.
_LIST_BATCH = 1000


def queue_changes(params: Params) -> dict[str, Any]:
    """The QueueAttributes fields a CreateQueue / SetQueueAttributes call sets."""
    changes: dict[str, Any] = {}
    for name, field in _INTEGER_ATTRIBUTES.items():
        value = params.integer(name)
        if value is not None:
            changes[field] = value
    logging = params.boolean("EnableLogging")
    if logging is not None:
        changes["logging_enabled"] = logging
    return changes


async def dead_letter_policy(
    queues: QueueService, params: Params, queue_name: str
) -> DeadLetterPolicy | Literal[Keep.KEEP] | None:
    """The DlqPolicy parameter as a policy; None switches it off; KEEP when absent.

    A policy whose `Enabled` is left out is on when it names a target queue. The target
    must exist: a policy naming a missing queue would do nothing at all (messages would
    be redelivered forever), which the caller should hear about now.
    """
    raw = params.json_object("DlqPolicy")
    if raw is None:
        return Keep.KEEP
    target = raw.get("DeadLetterTargetQueue")
    on = enabled(raw, "DlqPolicy") if "Enabled" in raw else bool(target)
    if not on:
        return None
    if not isinstance(target, str) or not target:
        raise invalid_argument(
            "DlqPolicy.DeadLetterTargetQueue is required when DlqPolicy.Enabled is true;"
            " name an existing queue."
        )
    check_queue_name(target)
    if target == queue_name:
        raise invalid_argument("A queue cannot be its own dead-letter queue.")
    count = raw.get("MaxReceiveCount")
    max_receives = (
        DEFAULT_MAX_RECEIVE_COUNT
        if count is None or count == ""
        else as_integer("DlqPolicy.MaxReceiveCount", count)
    )
    if await queues.find(target) is None:
        raise _dead_letter_queue_missing(target)
    return DeadLetterPolicy(target, max_receives)


def _dead_letter_queue_missing(name: str) -> ServiceError:
    return ServiceError(
        "QueueNotExist",
        f"The dead-letter queue {name} does not exist; create it before naming it in DlqPolicy.",
    )


def render_queue(queue: Queue, counts: QueueCounts) -> dict[str, Any]:
    """The attributes of a queue as GetQueueAttributes / ListQueue report them."""
    a = queue.attributes
    policy = queue.dead_letter
    dlq: dict[str, Any] = {"Enabled": False}
    if policy is not None:
        # MaxReceiveCount is a string in the API's response model.
        dlq = {
            "Enabled": True,
            "DeadLetterTargetQueue": policy.target_queue,
            "MaxReceiveCount": str(policy.max_receive_count),
        }
    return {
        "QueueName": queue.name,
        "QueueType": "normal",
        "CreateTime": queue.created_s,
        "LastModifyTime": queue.modified_s,
        "ActiveMessages": counts.active,
        "InactiveMessages": counts.inactive,
        "DelayMessages": counts.delayed,
        "DelaySeconds": a.delay_seconds,
        "MaximumMessageSize": a.maximum_message_size,
        "MessageRetentionPeriod": a.message_retention_period,
        "VisibilityTimeout": a.visibility_timeout,
        "PollingWaitSeconds": a.polling_wait_seconds,
        "LoggingEnabled": a.logging_enabled,
        "DlqPolicy": dlq,
        "TenantRateLimitPolicy": {"Enabled": False},
        "EnableSSE": False,
        "EncryptionEnabled": False,
        "Tags": [],
    }


async def create_queue(call: Call) -> Data:
    """CreateQueue: succeeds again for an identical queue; `QueueAlreadyExist` otherwise."""
    params, queues = call.params, call.services.queues
    name = params.require("QueueName")
    check_queue_name(name)
    refuse_unsupported(params, "QueueType")
    changes = queue_changes(params)
    policy = await dead_letter_policy(queues, params, name)
    await queues.create_queue(name, changes, None if policy is Keep.KEEP else policy)
    return OK_DATA


async def set_queue_attributes(call: Call) -> Data:
    """SetQueueAttributes: attributes not given keep their values; DlqPolicy too."""
    params, queues = call.params, call.services.queues
    name = params.require("QueueName")
    check_queue_name(name)
    refuse_unsupported(params, None)
    changes = queue_changes(params)
    policy = await dead_letter_policy(queues, params, name)
    await queues.set_queue_attributes(name, changes, policy)
    return OK_DATA


async def get_queue_attributes(call: Call) -> Data:
    """GetQueueAttributes, with the live message counters."""
    params, queues = call.params, call.services.queues
    name = params.require("QueueName")
    check_queue_name(name)
    params.refuse_tags()
    queue = await queues.get_queue(name)
    return render_queue(queue, await queues.counts(queue))


async def all_queues(queues: QueueService, prefix: str) -> list[Queue]:
    """Every queue whose name starts with `prefix`, by name."""
    found: list[Queue] = []
    marker: str | None = None
    while True:
        batch, marker = await queues.list_queues(prefix, marker, _LIST_BATCH)
        found.extend(batch)
        if marker is None:
            return found


async def list_queue(call: Call) -> Data:
    """ListQueue: `QueueName` filters by prefix; paged by PageNum / PageSize."""
    params, queues = call.params, call.services.queues
    params.refuse_tags()
    page = params.page()
    kind = params.get("QueueType")
    # Every Tidings queue is a normal one: a fifo filter matches none.
    matching = [] if kind == "fifo" else await all_queues(queues, params.get("QueueName") or "")
    start, end = page.slice(len(matching))
    items = [render_queue(q, await queues.counts(q)) for q in matching[start:end]]
    return page.envelope(len(matching), items)


async def delete_queue(call: Call) -> Data:
    """DeleteQueue: deletes the queue and its messages; a missing queue is not an error."""
    name = call.params.require("QueueName")
    check_queue_name(name)
    await call.services.queues.delete_queue(name)
    return OK_DATA


QUEUE_ACTIONS: dict[str, Handler] = {
    "CreateQueue": create_queue,
    "SetQueueAttributes": set_queue_attributes,
    "GetQueueAttributes": get_queue_attributes,
    "ListQueue": list_queue,
    "DeleteQueue": delete_queue,
}
