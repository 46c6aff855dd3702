"""The JSON envelope of every control-plane response, and each error's HTTP status.

The SDK (`alibabacloud_tea_openapi`) raises `ClientException` for a 4xx answer and
`ServerException` for a 5xx one, reading `Code`, `Message` and `RequestId` from the JSON
body; a 2xx answer is parsed into the operation's response model. So refusals must carry
a 4xx/5xx status, or the SDK would return them as if they had succeeded.
"""

from __future__ import annotations

import json

from tidings.api.control.context import Data
from tidings.errors import ServiceError

JSON = "application/json;charset=utf-8"
SUCCESS_MESSAGE = "operation success"

_STATUS_BY_CODE = {
    "InvalidAccessKeyId.NotFound": 404,
    "InvalidAction.NotFound": 404,
    "AccessDenied": 403,
    "InternalError": 500,
}


def status_for(code: str) -> int:
    """The HTTP status of an error code: 404 for `*NotExist`, 409 for conflicts, else 400."""
    status = _STATUS_BY_CODE.get(code)
    if status is not None:
        return status
    if code.endswith("NotExist"):
        return 404
    if code.endswith(("AlreadyExist", "Conflict")):
        return 409
    return 400


def _dump(document: dict[str, object]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def success(request_id: str, data: Data) -> bytes:
    """`{RequestId, Code: 200, Status, Message, Success: true[, Data]}`."""
    document: dict[str, object] = {
        "RequestId": request_id,
        "Code": 200,
        "Status": "Success",
        "Message": SUCCESS_MESSAGE,
        "Success": True,
    }
    if data is not None:
        document["Data"] = data
    return _dump(document)


def failure(request_id: str, error: ServiceError, host_id: str) -> bytes:
    """The same envelope for a refusal: `Code` is the error code, `Success` false.

    `HostId` is what the cloud's error documents add beside the envelope fields.
    """
    return _dump(
        {
            "RequestId": request_id,
            "HostId": host_id,
            "Code": error.code,
            "Status": "Failed",
            "Message": error.message,
            "Success": False,
        }
    )
