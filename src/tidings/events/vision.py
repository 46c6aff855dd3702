"""The Vision AI asynchronous-job event: plain JSON, not Base64 (spec event-sources §6).

Pure: an `AsyncJobEvent` is `{"jobId", "result", "status"}` in that order; the event
type (the API operation, e.g. `SuperResolveVideo`) selects rules but does not appear in
the body. `job_event()` builds one from loosely typed fields with defaults.
"""

from __future__ import annotations

import difflib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from tidings.errors import ServiceError, invalid_argument

# Job-status vocabulary of the asynchronous API (spec §6, inferred for events). Other
# strings are accepted: the spec leaves the event values undetermined (§9).
STATUSES = (
    "QUEUING",
    "PROCESSING",
    "PROCESS_SUCCESS",
    "PROCESS_FAILED",
    "TIMEOUT_FAILED",
    "LIMIT_RETRY_FAILED",
    "JOB_CANCELED",
)
SUCCESS = "PROCESS_SUCCESS"
FIELDS = ("jobId", "result", "status")
# Event types are API operation names; any identifier is accepted (spec §6).
OPERATION = re.compile(r"[A-Za-z][A-Za-z0-9]{0,127}")
RESULTS_HOST = "https://viapi-results.example.com"


@dataclass(frozen=True, slots=True)
class AsyncJobEvent:
    """One finished (or failed) asynchronous job. `result` is the API's own result."""

    job_id: str
    result: object
    status: str

    def document(self) -> dict[str, object]:
        """The JSON object, keys in the documented order."""
        return {"jobId": self.job_id, "result": self.result, "status": self.status}


def message_body(event: AsyncJobEvent) -> str:
    """The SMQ message body: compact UTF-8 JSON, not Base64."""
    return json.dumps(event.document(), ensure_ascii=False, separators=(",", ":"))


def request_id() -> str:
    """A RequestId in the service's shape (upper-case UUID); it is also the jobId."""
    return str(uuid.uuid4()).upper()


def job_event(operation: str, given: Mapping[str, object]) -> AsyncJobEvent:
    """The event of an `operation` job from `given` fields (`jobId`, `result`, `status`).

    Defaults: a fresh jobId, status `PROCESS_SUCCESS`, and a result `{"VideoUrl": ...}`
    naming a result file, as in the documented example (`{}` for a failed job). A
    `result` given as a string is parsed as JSON when it is JSON (how the CLI passes
    objects), and kept as a string otherwise.
    """
    if not OPERATION.fullmatch(operation):
        raise ServiceError(
            "EventTypeInvalid",
            f"{operation!r} is not a Vision AI event type: give the API operation name,"
            " e.g. SuperResolveVideo.",
        )
    unknown = [name for name in given if name not in FIELDS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], FIELDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise invalid_argument(
            f"Vision AI events have no field {unknown[0]!r}{hint}: use {', '.join(FIELDS)}."
        )
    job_id = _string("jobId", given.get("jobId", request_id()))
    status = _string("status", given.get("status", SUCCESS))
    if "result" in given:
        result = _result(given["result"])
    elif status == SUCCESS:
        result = {"VideoUrl": f"{RESULTS_HOST}/{operation}/{job_id}.mp4"}
    else:
        result = {}
    return AsyncJobEvent(job_id, result, status)


def _string(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise invalid_argument(f"The Vision AI field {name} must be a non-empty string.")
    return value


def _result(value: object) -> object:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
