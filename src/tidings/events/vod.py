"""ApsaraVideo VOD event notifications: the JSON bodies and the HTTP-callback signature.

Spec event-sources §4. Pure. Every event type of §4.4 is a table of `Field`s in the
order the documented samples show them (§4.5), each with a type, a default and when it
appears (always, only on success, only on failure, only when given). `document()`
coerces loosely typed fields (CLI `k=v` strings or JSON values) to those types, fills
in the rest, and `message_body()` renders the compact JSON that an HTTP callback POSTs
and an MNS callback or rule writes as the message body (plain JSON, not Base64).

`signature()` is the optional HTTP-callback authentication of §4.2: lower-case hex MD5
of `<CallbackURL>|<X-VOD-TIMESTAMP>|<AuthKey>`.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping

from tidings.errors import ServiceError, invalid_argument
from tidings.events.vod_fields import (
    Context,
    Default,
    F,
    Field,
    Kind,
    coerce_all,
    compact,
    event_time,
    render,
)

TIMESTAMP_HEADER = "X-VOD-TIMESTAMP"
SIGNATURE_HEADER = "X-VOD-SIGNATURE"
DEFAULT_APP_ID = "app-1000000"
MEDIA_HOST = "https://vod.example.com"
ALL = "ALL"
AI_COMPLETE = "AIComplete"


def signature(url: str, timestamp: int | str, key: str) -> str:
    """`X-VOD-SIGNATURE`: lower-case hex MD5 of `url|timestamp|key` (§4.2)."""
    return hashlib.md5(f"{url}|{timestamp}|{key}".encode()).hexdigest()


def auth_headers(url: str, key: str, timestamp: int) -> dict[str, str]:
    """The two authentication headers of a callback sent at `timestamp` (Unix seconds)."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(url, timestamp, key)}


def event_enabled(event_type_list: str, event_type: str) -> bool:
    """Whether a SetMessageCallback `EventTypeList` switches `event_type` on (§4.1).

    Comma-separated names; `ALL` is everything, `AIComplete` every AI event; empty is off.
    """
    names = {name.strip() for name in event_type_list.split(",") if name.strip()}
    if ALL in names or event_type in names:
        return True
    return AI_COMPLETE in names and event_type.startswith("AI")


def _now(c: Context) -> str:
    return event_time(c.now_ms)


def _id(name: str) -> Field:
    """An id field, generated unless given."""
    return F(name, default=lambda c: c.id(name))


def _file(folder: str, id_name: str, extension: str) -> Default:
    return lambda c: f"{MEDIA_HOST}/{folder}/{c.id(id_name)}{extension}"


def _url(suffix: str) -> Default:
    return lambda c: f"{MEDIA_HOST}/{c.id('VideoId')}/{c.id('JobId')[:8]}{suffix}"


def _stream_url(c: Context) -> str:
    """A stream's file, named after its definition and format like the samples'."""
    definition, extension = c.given.get("Definition", "SD"), c.given.get("Format", "mp4")
    return (
        f"{MEDIA_HOST}/{c.id('VideoId')}/{c.id('JobId')[:8]}-{str(definition).lower()}.{extension}"
    )


def _fail_text(ok_text: str, fail_text: str) -> Default:
    return lambda c: ok_text if c.ok else fail_text


_TIME = F("EventTime", default=_now)
_TYPE = F("EventType", default=lambda c: c.event_type)
_STATUS = F("Status")  # filled from the status vocabulary, see `document`
_VIDEO = _id("VideoId")
_MEDIA = _id("MediaId")
_JOB = _id("JobId")
_EXTEND = F("Extend", "jsonstr", "given")
_ERRORS = (
    F("ErrorCode", when="fail", default="InternalError"),
    F("ErrorMessage", when="fail", default="The job failed."),
)
# Present in some samples of every type; accepted on any event when given (§4.4).
_OPTIONAL = (
    F("AppId", when="given"),
    _EXTEND,
    F("ErrorCode", when="given"),
    F("ErrorMessage", when="given"),
)

STREAM_FIELDS = (
    _STATUS,
    F("Bitrate", when="ok", default="1208"),
    F("Definition", default="SD"),
    F("Duration", "float", "ok", 312.48),
    F("Encrypt", "bool", "ok", False),
    F("FileUrl", when="ok", default=_stream_url),
    F("Format", default="mp4"),
    F("Fps", when="ok", default="25"),
    F("Height", "int", "ok", 720),
    F("Width", "int", "ok", 1280),
    F("Size", "int", "ok", 47193822),
    _JOB,
    *_ERRORS,
)
SNAPSHOT_FIELDS = (
    _STATUS,
    F("SnapshotType", default="CoverSnapshot"),
    F("SnapshotCount", "int", "ok", 8),
    F("SnapshotFormat", when="ok", default=lambda c: _snapshot_path(c)),
    F("SnapshotRegular", when="ok", default=lambda c: f"{MEDIA_HOST}/{_snapshot_path(c)}"),
    _JOB,
    *_ERRORS,
)


def _snapshot_path(c: Context) -> str:
    # `{SnapshotCount}` stays literal: consumers substitute a 5-digit serial (§4.5).
    return f"{c.id('VideoId')}/snapshots/{c.id('JobId')[:8]}-{{SnapshotCount}}.jpg"


def _task_input(c: Context) -> str:
    return compact({"Type": "Media", "Media": c.id("VideoId")})


def _streams(c: Context) -> object:
    return [render(STREAM_FIELDS, {}, c.item({}), ok=c.ok)]


def _snapshots(c: Context) -> object:
    return [render(SNAPSHOT_FIELDS, {}, c.item({}), ok=True)]


_AI_DATA: tuple[tuple[str, Kind, object], ...] = (
    # The result: an object in the audit sample, a JSON string in the DNA/tag ones (§4.5).
    ("AIMediaAuditComplete", "json", {"Suggestion": "pass"}),
    ("AIMediaDNAComplete", "jsonstr", '{"VideoDNA":[]}'),
    ("AIVideoTagComplete", "jsonstr", '{"VideoTag":[]}'),
)
_LIVE = (
    F("StreamName", default="live-stream"),
    F("DomainName", default="live.example.com"),
    F("AppName", default="live"),
)
EVENTS: dict[str, tuple[Field, ...]] = {
    "FileUploadComplete": (
        _TIME, _TYPE, _VIDEO, _STATUS, F("Size", "int", "ok", 73418235),
        F("FileUrl", when="ok", default=_url(".mp4")), _EXTEND,
    ),
    "ImageUploadComplete": (
        _STATUS, F("FileURL", when="ok", default=_file("image", "ImageId", ".jpg")),
        F("AppId", default=DEFAULT_APP_ID), _TYPE, _TIME, F("Size", "int", "ok", 214733),
        _id("ImageId"),
    ),
    "AttachedMediaUploadComplete": (
        _TIME, _TYPE, _id("AttachedMediaId"), F("Size", "int", "ok", 14333),
        F("FileURL", when="ok", default=_file("attached", "AttachedMediaId", ".png")), _STATUS,
    ),
    "UploadByURLComplete": (
        _TIME, _TYPE, _VIDEO, _JOB, F("SourceURL", default="https://media.example.com/source.mp4"),
        _STATUS, F("Size", "int", "ok", 73418235), *_ERRORS,
    ),
    "StreamTranscodeComplete": (
        _TIME, _TYPE, _VIDEO, *STREAM_FIELDS[:-3], _JOB, _EXTEND, *_ERRORS,
    ),
    "TranscodeComplete": (
        _TIME, _TYPE, _VIDEO, _STATUS, _EXTEND,
        F("StreamInfos", "items", default=_streams, items=STREAM_FIELDS),
    ),
    "SnapshotComplete": (
        _TYPE, _TIME, _VIDEO, _STATUS, F("SubType", when="given"),
        F("CoverUrl", when="ok", default=lambda c: f"{MEDIA_HOST}/{c.id('VideoId')}/cover.jpg"),
        F("SnapshotInfos", "items", "ok", _snapshots, SNAPSHOT_FIELDS), _EXTEND, *_ERRORS,
    ),
    "DynamicImageComplete": (
        _TIME, _TYPE, _VIDEO, _STATUS, _JOB,
        F("DynamicImageJobInfo", "jsonstr", "ok", lambda c: compact({
            "JobId": c.id("JobId"), "Status": "success",
            "FileURL": f"{MEDIA_HOST}/{c.id('VideoId')}/dynamic.gif",
            "FileSize": "1048576", "Fps": "10", "Height": "360", "Width": "640",
        })),
        *_ERRORS,
    ),
    "VideoAnalysisComplete": (
        _VIDEO, F("Duration", when="ok", default="312.48"), F("Height", when="ok", default="1080"),
        F("Width", when="ok", default="1920"), F("Fps", when="ok", default="25"),
        F("Bitrate", when="ok", default="1884"), F("Size", when="ok", default="73418235"),
        _TIME, _TYPE, _STATUS, *_ERRORS,
    ),
    "AddLiveRecordVideoComplete": (
        _TIME, _TYPE, _VIDEO, _STATUS, *_LIVE,
        F("RecordStartTime", default=lambda c: c.later(-3600)), F("RecordEndTime", default=_now),
    ),
    "LiveRecordVideoComposeStart": (_TIME, _TYPE, _VIDEO, _STATUS, *_LIVE),
    "CreateAuditComplete": (
        _TYPE, _TIME, _STATUS, _MEDIA, F("SubType", default="video"),
        F("AuditStatus", default="Normal"), F("CreationTime", default=_now),
        F("Auditor", default="auditor"), F("Reason", default=""),
    ),
    **{
        name: (
            _TIME, _TYPE, _JOB, _MEDIA, _STATUS,
            F("Code", default=_fail_text("0", "InternalError")),
            F("Message", default=_fail_text("OK", "The job failed.")), F("Data", kind, "ok", data),
        )
        for name, kind, data in _AI_DATA
    },
    "ProduceMediaComplete": (_TIME, _TYPE, _STATUS, _MEDIA, _id("ProjectId"), *_ERRORS),
    "DeleteMediaComplete": (
        _TYPE, _TIME, _STATUS, F("MediaType", default="video"), F("DeleteType", default="all"),
        _MEDIA, F("JobIds", "json", "given"), *_ERRORS,
    ),
    "MediaBaseChangeComplete": (
        _TYPE, _TIME, _STATUS, F("MediaType", default="video"), _MEDIA,
        F("OperateMode", default="update"),
        F("MediaContent", "changes", default={"Title": '{"OldValue":"old","NewValue":"new"}'}),
    ),
    "UpdateMediaStorageClassComplete": (
        _TYPE, _TIME, _STATUS, _MEDIA, F("Scope", default="All"), F("StorageClass", default="IA"),
        F("TriggerBy", default="API"), *_ERRORS,
    ),
    "RestoreMediaComplete": (
        _TYPE, _TIME, _STATUS, _MEDIA,
        F("RestoreExpiration", when="ok", default=lambda c: c.later(86400)), *_ERRORS,
    ),
    "SubmitMediaRefreshComplete": (
        _TIME, _TYPE, _STATUS, _id("MediaRefreshJobId"), _MEDIA, F("TaskType", default="Refresh"),
        F("SuccessPlayUrls", when="ok", default=lambda c: f"{MEDIA_HOST}/{c.id('MediaId')}/sd.mp4"),
        F("TaskIds", when="ok", default="1234567890"), F("FilterPolicy", "jsonstr", "given"),
        _EXTEND, *_ERRORS,
    ),
    "WorkflowTaskComplete": (
        _TYPE, _TIME, _id("WorkflowId"), _STATUS, _VIDEO, _id("TaskId"),
        F("ActivityResults", "jsonstr", default=lambda c: compact({"Transcode": {
            "Status": "Succeed" if c.ok else "Failed", "StartTime": c.later(-60),
            "EndTime": _now(c), "ActivityId": "Transcode",
            "ActivityInstanceId": c.id("ActivityInstanceId"), "Result": "{}",
        }})),
        F("TaskInput", "jsonstr", default=_task_input),
        F("CreateTime", default=lambda c: c.later(-60)), F("ModifiedTime", default=_now),
        F("FinishTime", default=_now), F("UserId", default=lambda c: c.account_id),
    ),
}  # fmt: skip
EVENT_TYPES = tuple(EVENTS)
# (success, failure) words of `Status`; the others use success/fail (§4.4).
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "UpdateMediaStorageClassComplete": ("Success", "Failed"),
    "WorkflowTaskComplete": ("Succeed", "Failed"),
}


def document(
    event_type: str, given: Mapping[str, object], *, now_ms: int, region: str, account_id: str
) -> dict[str, object]:
    """The body of a VOD event of `event_type` from `given` fields, defaults filled in.

    Unknown fields are refused (with the nearest known name), as are values of the wrong
    type. Without `Status` the event succeeded (TranscodeComplete: when one of its
    `StreamInfos` did); a failed event carries `ErrorCode`/`ErrorMessage` instead of
    its success-only fields.
    """
    fields = EVENTS.get(event_type)
    if fields is None:
        close = difflib.get_close_matches(event_type, EVENT_TYPES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ServiceError(
            "EventTypeInvalid",
            f"{event_type!r} is not a VOD event type.{hint} Use one of: {', '.join(EVENT_TYPES)}.",
        )
    if given.get("EventType", event_type) != event_type:
        raise invalid_argument(f"EventType {given['EventType']!r} contradicts {event_type!r}.")
    names = {f.name for f in fields}
    fields = (*fields, *(f for f in _OPTIONAL if f.name not in names))
    context = Context(event_type, now_ms, region, account_id, given)
    values = coerce_all(fields, given, context, "")
    streams = values.get("StreamInfos")
    if "Status" not in values and isinstance(streams, list) and streams:
        # A transcode succeeded when at least one of its streams did (§4.5).
        success, failure = STATUS_WORDS.get(event_type, ("success", "fail"))
        done = any(isinstance(s, dict) and s.get("Status") == success for s in streams)
        values["Status"] = success if done else failure
    return render(fields, values, context, words=STATUS_WORDS.get(event_type))


def message_body(document: Mapping[str, object]) -> str:
    """The body written to a queue / topic and POSTed to an HTTP callback: compact JSON."""
    return compact(document)
