"""The DirectMail delivery event: `key=value&...` plain text (spec event-sources §5).

Pure: a `DeliveryEvent` holds the fields of one delivery result and `message_body()`
renders them in the documented order, values raw (neither percent-encoded nor Base64),
exactly like the documented samples. `delivery_event()` builds one from loosely typed
`fields` (CLI `k=v` strings or JSON values) with defaults for everything not given.
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from tidings.errors import ServiceError, invalid_argument

SEND_SUCCESSFULLY = "Deliver:SendSuccessfully"
SEND_FAILED = "Deliver:SendFailed"
EVENT_TYPES = (SEND_SUCCESSFULLY, SEND_FAILED)
# `status`: 0 success, 2 invalid address, 3 judged spam by the recipient, 4 other failure.
SUCCESS_STATUS = 0
FAILURE_STATUSES = frozenset({2, 3, 4})
# The documented samples show `deliver` for both event types (§9: not determined further).
DELIVER = "deliver"
# `recv_time`/`end_time` carry no zone; DirectMail is a China-mainland service and its
# console shows Beijing time, so local times are rendered in UTC+8 (inferred).
DEFAULT_UTC_OFFSET_HOURS = 8
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# The documented field order; `from` is a Python keyword, hence `sender` in the class.
WIRE_ORDER = (
    "env_id",
    "msg_id",
    "account",
    "from",
    "rcpt",
    "recv_time",
    "end_time",
    "status",
    "event",
    "region",
    "err_code",
    "err_msg",
)
_ATTRIBUTE = {"from": "sender"}


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One delivery result, field for field as the message carries it."""

    env_id: str
    msg_id: str
    account: str
    sender: str
    rcpt: str
    recv_time: str
    end_time: str
    status: int
    event: str
    region: str
    err_code: str
    err_msg: str

    def pairs(self) -> list[tuple[str, str]]:
        """(wire name, value) in the documented order."""
        return [(name, str(getattr(self, _ATTRIBUTE.get(name, name)))) for name in WIRE_ORDER]


def message_body(event: DeliveryEvent) -> str:
    """The SMQ message body: `k=v` pairs joined by `&`, values raw as documented."""
    return "&".join(f"{name}={value}" for name, value in event.pairs())


def local_time(ms: int, utc_offset_hours: int = DEFAULT_UTC_OFFSET_HOURS) -> str:
    """`YYYY-MM-DD HH:MM:SS` of a Unix-ms instant in the given zone."""
    zone = timezone(timedelta(hours=utc_offset_hours))
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime(TIME_FORMAT)


def _digits(count: int) -> str:
    """A random number of `count` digits, no leading zero (the samples' id shape)."""
    return str(secrets.randbelow(9 * 10 ** (count - 1)) + 10 ** (count - 1))


def delivery_event(
    event_type: str,
    given: Mapping[str, object],
    *,
    now_ms: int,
    region: str,
    utc_offset_hours: int = DEFAULT_UTC_OFFSET_HOURS,
) -> DeliveryEvent:
    """A delivery event of `event_type` from wire-named `given` fields, defaults filled in.

    Defaults: fresh `env_id` (9 digits) and `msg_id` (14 digits), a sender
    `notice@mail.example.com`, recipient `alice@example.net`, both times now, `event`
    `deliver`, this server's region; the status and SMTP reply follow the event type
    (0 / 250 for success, 2 / 550 "Mailbox does not exist" for failure). A status that
    contradicts the event type is refused, as is a value containing `&`, which no
    consumer could split back out of the body.
    """
    if event_type not in EVENT_TYPES:
        raise ServiceError(
            "EventTypeInvalid",
            f"{event_type!r} is not a DirectMail event type: use {' or '.join(EVENT_TYPES)}.",
        )
    unknown = [name for name in given if name not in WIRE_ORDER]
    if unknown:
        close = difflib.get_close_matches(unknown[0], WIRE_ORDER, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise invalid_argument(
            f"DirectMail events have no field {unknown[0]!r}{hint}: use {', '.join(WIRE_ORDER)}."
        )
    values = {name: _text(name, value) for name, value in given.items()}
    failed = event_type == SEND_FAILED
    now = local_time(now_ms, utc_offset_hours)
    account = values.get("account", "notice@mail.example.com")
    event = DeliveryEvent(
        env_id=values.get("env_id", _digits(9)),
        msg_id=values.get("msg_id", _digits(14)),
        account=account,
        sender=values.get("from", account),
        rcpt=values.get("rcpt", "nobody@example.org" if failed else "alice@example.net"),
        recv_time=values.get("recv_time", now),
        end_time=values.get("end_time", now),
        status=_status(values.get("status"), failed),
        event=values.get("event", DELIVER),
        region=values.get("region", region),
        err_code=values.get("err_code", "550" if failed else "250"),
        err_msg=values.get(
            "err_msg", "550 5.1.1 Mailbox does not exist" if failed else "250 Send Mail OK"
        ),
    )
    _check_time("recv_time", event.recv_time)
    _check_time("end_time", event.end_time)
    return event


def _text(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid_argument(f"The DirectMail field {name} must be a string, not {value!r}.")
    text = str(value)
    if "&" in text:
        raise invalid_argument(
            f"The DirectMail field {name} contains '&': the body is split on '&', so no"
            " consumer could read it back. Leave the character out."
        )
    return text


def _status(given: str | None, failed: bool) -> int:
    if given is None:
        return 2 if failed else SUCCESS_STATUS
    try:
        status = int(given)
    except ValueError:
        raise invalid_argument(f"status must be 0, 2, 3 or 4, not {given!r}.") from None
    if failed and status not in FAILURE_STATUSES:
        raise invalid_argument(
            f"status {status} is not a failure: {SEND_FAILED} takes 2 (invalid address),"
            " 3 (judged spam) or 4 (other failure)."
        )
    if not failed and status != SUCCESS_STATUS:
        raise invalid_argument(
            f"status {status} is a failure: {SEND_SUCCESSFULLY} takes 0; emit {SEND_FAILED}"
            " for a failed delivery."
        )
    return status


def _check_time(name: str, text: str) -> None:
    try:
        datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        raise invalid_argument(
            f"{name} {text!r} is not a time like 2025-03-14 16:05:01 (YYYY-MM-DD HH:MM:SS)."
        ) from None
