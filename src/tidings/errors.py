"""Domain errors, shared by every layer.

Codes are the service's own error codes (`QueueNotExist`, `InvalidArgument`, ...): they
are the domain's vocabulary, while the HTTP status each code travels with is decided in
`api/`.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the client caused, with the service's error code and a helpful message."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # Extra, operation-specific fields of the error document (OSS: BucketName, Key,
        # StringToSign, ...), in the order they should appear.
        self.details = details or {}
        # Response headers the error must carry (x-oss-next-append-position, ...).
        self.headers = headers or {}

    def __repr__(self) -> str:
        return f"ServiceError({self.code!r}, {self.message!r})"


def invalid_argument(message: str) -> ServiceError:
    """A well-formed request whose value is out of range or of the wrong shape."""
    return ServiceError("InvalidArgument", message)


def queue_not_exist(name: str) -> ServiceError:
    """The queue named in the request does not exist."""
    return ServiceError("QueueNotExist", f"The queue name you provided is not exist: {name}.")


def message_not_exist(message: str = "Message not exist.") -> ServiceError:
    """No message to return, or the message addressed is gone."""
    return ServiceError("MessageNotExist", message)


def receipt_handle_error(handle: str) -> ServiceError:
    """The receipt handle is malformed, expired, superseded or belongs elsewhere."""
    return ServiceError(
        "ReceiptHandleError", f"The receipt handle you provided is not valid: {handle}."
    )


def position_not_equal(length: int) -> ServiceError:
    """An append at the wrong position; the response carries the length as a header."""
    return ServiceError(
        "PositionNotEqualToLength",
        "Position is not equal to file length.",
        headers={"x-oss-next-append-position": str(length)},
    )
