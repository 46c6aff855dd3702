"""Pure rules of the object store: names, ACLs, storage classes, tags, metadata, ids."""

from __future__ import annotations

import base64
import mimetypes
import re
import secrets
import struct
from urllib.parse import parse_qsl

from tidings.errors import ServiceError, invalid_argument

MAX_KEY_BYTES = 1023
MAX_USER_META_BYTES = 8 * 1024
MAX_TAGS = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_OBJECT_SIZE = 5 * 1024**3

BUCKET_ACLS = ("private", "public-read", "public-read-write")
OBJECT_ACLS = ("default", *BUCKET_ACLS)
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
ARCHIVE_CLASSES = ("Archive", "ColdArchive", "DeepColdArchive")
REDUNDANCY_TYPES = ("LRS", "ZRS")

# The stored HTTP headers of an object, by lower-case request name.
STORED_HEADERS = {
    "content-type": "Content-Type",
    "content-encoding": "Content-Encoding",
    "content-disposition": "Content-Disposition",
    "cache-control": "Cache-Control",
    "expires": "Expires",
    "content-language": "Content-Language",
    "x-oss-server-side-encryption": "x-oss-server-side-encryption",
    "x-oss-server-side-encryption-key-id": "x-oss-server-side-encryption-key-id",
    "x-oss-server-side-data-encryption": "x-oss-server-side-data-encryption",
}
META_PREFIX = "x-oss-meta-"

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def check_bucket_name(name: str) -> str:
    """The name, or InvalidBucketName (3-63 of a-z 0-9 -, alphanumeric at both ends)."""
    if _BUCKET_NAME.fullmatch(name) is None:
        raise ServiceError(
            "InvalidBucketName",
            "The specified bucket is not valid: use 3-63 lower-case letters, digits and"
            " '-', starting and ending with a letter or digit.",
            {"BucketName": name},
        )
    return name


def check_key(key: str) -> str:
    """The key, or InvalidObjectName (1-1023 bytes of UTF-8, not starting with / or \\)."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        size = 0
    if not 0 < size <= MAX_KEY_BYTES or key[0] in "/\\":
        raise ServiceError(
            "InvalidObjectName",
            "The specified object name is not valid: it must be 1-1023 bytes of UTF-8 and"
            " must not start with '/' or '\\'.",
            {"Key": key},
        )
    return key


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    """`value` if it is one of `allowed`, else InvalidArgument naming the choices."""
    if value not in allowed:
        raise ServiceError(
            "InvalidArgument",
            f"{what} {value!r} is not valid; use one of {', '.join(allowed)}.",
            {"ArgumentName": what, "ArgumentValue": value},
        )
    return value


def parse_tagging_header(value: str) -> dict[str, str]:
    """The `x-oss-tagging` query-string form, validated."""
    return check_tags(parse_qsl(value, keep_blank_values=True))


def check_tags(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Tags as a dict: at most 10, keys 1-128 and values 0-256 characters, keys unique."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not 0 < len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise ServiceError(
                "InvalidTag", "Tag keys must be 1-128 characters and values 0-256 characters."
            )
        if key in tags:
            raise ServiceError("InvalidTag", f"The tag key {key!r} appears twice.")
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise ServiceError("InvalidTag", f"An object can have at most {MAX_TAGS} tags.")
    return tags


def stored_headers(headers: dict[str, str], key: str) -> dict[str, str]:
    """The headers an object keeps, from a request's (lower-case) headers.

    Content-Type falls back to a guess from the key's extension, as OSS does.
    """
    stored = {name: headers[lower] for lower, name in STORED_HEADERS.items() if lower in headers}
    if not stored.get("Content-Type"):
        stored["Content-Type"] = guess_content_type(key)
    return stored


def guess_content_type(key: str) -> str:
    """A MIME type from the key's extension, else application/octet-stream."""
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or "application/octet-stream"


def user_meta(headers: dict[str, str]) -> dict[str, str]:
    """`x-oss-meta-*` headers with lower-case names (prefix removed), at most 8 KB in all."""
    meta = {
        name[len(META_PREFIX) :]: value
        for name, value in headers.items()
        if name.startswith(META_PREFIX)
    }
    if sum(len(k) + len(v) for k, v in meta.items()) > MAX_USER_META_BYTES:
        raise ServiceError(
            "MetadataTooLarge", "User metadata (x-oss-meta-*) must not exceed 8 KB in total."
        )
    return meta


def parse_bool(value: str | None) -> bool:
    """A header boolean: 'true' in any capitalisation."""
    return value is not None and value.strip().lower() == "true"


def parse_int(value: str | None, name: str, low: int, high: int, default: int) -> int:
    """A bounded integer parameter, or InvalidArgument naming it."""
    if value is None or value == "":
        return default
    # ASCII only: str.isdigit() also accepts "²" (int() fails) and "١" (int() parses).
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ServiceError(
            "InvalidArgument",
            f"{name} must be an integer from {low} to {high}.",
            {"ArgumentName": name, "ArgumentValue": value},
        )
    return int(value)


def new_version_id(now_ms: int) -> str:
    """A URL-safe version id that sorts by creation time (ms, then 64 random bits)."""
    raw = struct.pack(">Q", now_ms) + secrets.token_bytes(8)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def new_upload_id() -> str:
    """32 upper-case hex characters."""
    return secrets.token_hex(16).upper()


def new_request_id() -> str:
    """24 upper-case hex characters."""
    return secrets.token_hex(12).upper()


def appendable_etag(crc64: int, size: int) -> str:
    """An appendable object's ETag: it changes with every append (OSS's is opaque too)."""
    return f"{crc64:016X}{size & 0xFFFFFFFFFFFFFFFF:016X}"


def check_restore_days(days: int, storage_class: str) -> int:
    """Restore lifetime: Archive 1-7 days, colder classes 1-365."""
    high = 7 if storage_class == "Archive" else 365
    if not 1 <= days <= high:
        raise invalid_argument(f"Days must be from 1 to {high} for {storage_class} objects.")
    return days
