"""Domain objects of the object store, passed between services and stores. Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

# Versioning states of a bucket; "" means versioning was never enabled.
VERSIONING_NEVER = ""
VERSIONING_ENABLED = "Enabled"
VERSIONING_SUSPENDED = "Suspended"

# The version id of objects written while versioning is off or suspended.
NULL_VERSION = "null"

NORMAL = "Normal"
MULTIPART = "Multipart"
APPENDABLE = "Appendable"
SYMLINK = "Symlink"

# Restore states of an archive-class version.
FROZEN = ""
RESTORING = "ongoing"
RESTORED = "done"


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket as stored."""

    id: int
    name: str
    owner: str
    created_ms: int
    acl: str
    storage_class: str
    redundancy: str
    versioning: str = VERSIONING_NEVER
    lifecycle: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Restore:
    """The restore state of an archive-class version."""

    state: str = FROZEN
    ready_ms: int | None = None
    expiry_ms: int | None = None
    days: int | None = None
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of an object (or a delete marker).

    `headers` are the stored HTTP headers under their canonical names (`Content-Type`,
    `Cache-Control`, ...); `meta` the user metadata with lower-case names (without the
    `x-oss-meta-` prefix); `crc64` the unsigned CRC-64/XZ of the whole body.
    """

    seq: int
    bucket_id: int
    key: str
    version_id: str
    is_current: bool
    is_delete_marker: bool
    blob_id: str | None
    size: int
    etag: str
    crc64: int
    object_type: str
    storage_class: str
    acl: str
    last_modified_ms: int
    noncurrent_since_ms: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    transition_ms: int | None = None
    restore: Restore = field(default_factory=Restore)
    # The bytes of a small object stored in its row; loaded only for reads.
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class NewObject:
    """What a write stores as the body and attributes of a new version."""

    blob_id: str | None
    size: int
    etag: str
    crc64: int
    object_type: str
    storage_class: str
    acl: str
    headers: dict[str, str]
    meta: dict[str, str]
    tags: dict[str, str]
    # A small object's bytes, stored in its row instead of a blob (blob_id is then None).
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a write changed: the new version, the one it displaced, blobs to delete."""

    version: ObjectVersion
    previous: ObjectVersion | None
    released_blobs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """What a delete did.

    `removed` is the version that stopped existing or stopped being current (None when
    there was nothing), `marker` the delete marker created (or removed, when a version
    id named one).
    """

    removed: ObjectVersion | None
    marker: ObjectVersion | None
    marker_created: bool
    released_blobs: list[str] = field(default_factory=list)
    # Whether `removed` is gone for good (False: it only became a previous version).
    permanent: bool = True


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing: entries in order, common prefixes, paging state."""

    objects: list[ObjectVersion]
    prefixes: list[str]
    truncated: bool
    next_marker: str
    next_version_marker: str = ""


@dataclass(frozen=True, slots=True)
class Upload:
    """A multipart upload in progress."""

    id: int
    bucket_id: int
    key: str
    upload_id: str
    initiated_ms: int
    storage_class: str
    acl: str
    headers: dict[str, str]
    meta: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class Part:
    """An uploaded part of a multipart upload."""

    number: int
    blob_id: str
    size: int
    etag: str
    crc64: int
    last_modified_ms: int


@dataclass(frozen=True, slots=True)
class UploadPage:
    """One page of ListMultipartUploads."""

    uploads: list[Upload]
    prefixes: list[str]
    truncated: bool
    next_key_marker: str
    next_upload_id_marker: str
