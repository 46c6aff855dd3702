"""The OSS object event: the JSON document a rule delivers, Base64-encoded (spec 2.3).

Pure: an `OssEvent` holds the facts of one committed change (or read), `document()`
renders `{"events":[...]}` with the documented key order, and `message_body()` gives
the SMQ message body, the Base64 of its compact UTF-8 JSON.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any

EVENT_SOURCE = "acs:oss"
EVENT_VERSION = "1.0"
SCHEMA_VERSION = "1.0"
# `x-oss-event-status` on a request that matched a rule: Base64 of {"Result":"Ok"}.
EVENT_STATUS_OK = base64.b64encode(b'{"Result":"Ok"}').decode("ascii")


@dataclass(frozen=True, slots=True)
class OssEvent:
    """One object event, as the triggering operation saw it.

    `position` is set for AppendObject only, `read_range` (first byte, one past the
    last) for GetObject only. `x_vars` are the upload-callback custom variables.
    """

    event_name: str
    event_time_ms: int
    region: str
    owner: str
    bucket: str
    key: str
    size: int
    delta_size: int
    etag: str
    rule_id: str
    source_ip: str
    request_id: str
    principal_id: str
    position: int | None = None
    read_range: tuple[int, int] | None = None
    x_vars: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    # Events come in bursts within one second: format its date and time once.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def event_time(ms: int) -> str:
    """ISO 8601 UTC with milliseconds and `Z`."""
    return f"{_second(ms // 1000)}.{ms % 1000:03d}Z"


def record(event: OssEvent) -> dict[str, Any]:
    """One entry of `events[]`, keys in the documented order."""
    obj: dict[str, Any] = {
        "deltaSize": event.delta_size,
        "eTag": event.etag,
        "key": event.key,
    }
    if event.position is not None:
        obj["position"] = event.position
    if event.read_range is not None:
        obj["readFrom"], obj["readTo"] = event.read_range
    obj["size"] = event.size
    entry: dict[str, Any] = {
        "eventName": event.event_name,
        "eventSource": EVENT_SOURCE,
        "eventTime": event_time(event.event_time_ms),
        "eventVersion": EVENT_VERSION,
        "oss": {
            "bucket": {
                "arn": f"acs:oss:{event.region}:{event.owner}:{event.bucket}",
                "name": event.bucket,
                "ownerIdentity": event.owner,
            },
            "object": obj,
            "ossSchemaVersion": SCHEMA_VERSION,
            "ruleId": event.rule_id,
        },
        "region": event.region,
        "requestParameters": {"sourceIPAddress": event.source_ip},
        "responseElements": {"requestId": event.request_id},
        "userIdentity": {"principalId": event.principal_id},
    }
    if event.x_vars:
        entry["xVars"] = dict(event.x_vars)
    return entry


def document(event: OssEvent) -> str:
    """The compact JSON `{"events":[...]}` of one event (UTF-8 text, not escaped)."""
    return json.dumps({"events": [record(event)]}, ensure_ascii=False, separators=(",", ":"))


def message_body(event: OssEvent) -> str:
    """The SMQ message body: Base64 of the UTF-8 JSON document."""
    return base64.b64encode(document(event).encode("utf-8")).decode("ascii")
