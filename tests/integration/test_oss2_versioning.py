"""Versioning driven by the official `oss2` SDK against a real `tidings serve` process:
Enabled and Suspended buckets, version ids, delete markers, reads and deletes by version,
`null` versions, ListObjectVersions paging against a model, restoring an old version by
copy, and appends on versioned buckets (spec sections 7.5, 9.10, 9.11 and 11)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import oss2
import pytest
from oss2.models import BatchDeleteObjectVersion, BatchDeleteObjectVersionList, Tagging, TaggingRule

from tests.integration.oss2_support import error_of
from tests.support import ACCOUNT_ID

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def set_versioning(bucket: oss2.Bucket, status: str) -> None:
    """PutBucketVersioning."""
    bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig(status))


def version(version_id: str) -> dict[str, str]:
    """The `versionId` query parameter."""
    return {"versionId": version_id}


@pytest.fixture
def versioned(oss2_bucket: oss2.Bucket) -> oss2.Bucket:
    """A fresh bucket with versioning Enabled."""
    set_versioning(oss2_bucket, "Enabled")
    return oss2_bucket


def test_versioning_status_round_trip(oss2_bucket: oss2.Bucket) -> None:
    """GetBucketVersioning has no Status until versioning is enabled, then follows
    PutBucketVersioning (Enabled / Suspended, never back); other values are a 400."""
    assert oss2_bucket.get_bucket_versioning().status is None
    put = oss2_bucket.put_object("k", b"x")
    assert put.versionid is None  # never-versioned buckets send no x-oss-version-id
    set_versioning(oss2_bucket, "Enabled")
    assert oss2_bucket.get_bucket_versioning().status == "Enabled"
    set_versioning(oss2_bucket, "Suspended")
    assert oss2_bucket.get_bucket_versioning().status == "Suspended"
    assert oss2_bucket.get_bucket_info().versioning_status == "Suspended"
    error = error_of(set_versioning, oss2_bucket, "Disabled")
    assert error.status == 400
    assert oss2_bucket.get_bucket_versioning().status == "Suspended"


def test_each_put_makes_a_new_version_readable_by_id(versioned: oss2.Bucket) -> None:
    """On an Enabled bucket every PutObject returns a new URL-safe version id; GET, HEAD,
    GetObjectMeta, ACL and tagging address any version with `versionId`, the current one
    without."""
    first = versioned.put_object("k", b"one")
    second = versioned.put_object("k", b"two")
    assert first.versionid != second.versionid
    for result in (first, second):
        assert URL_SAFE.fullmatch(result.versionid)

    current = versioned.get_object("k")
    assert (current.read(), current.versionid) == (b"two", second.versionid)
    old = versioned.get_object("k", params=version(first.versionid))
    assert (old.read(), old.versionid) == (b"one", first.versionid)
    assert versioned.head_object("k", params=version(first.versionid)).content_length == 3
    meta = versioned.get_object_meta("k", params=version(first.versionid))
    assert meta.versionid == first.versionid

    rule = TaggingRule()
    rule.add("era", "old")
    versioned.put_object_tagging("k", Tagging(rule), params=version(first.versionid))
    tags = versioned.get_object_tagging("k", params=version(first.versionid))
    assert tags.tag_set.tagging_rule == {"era": "old"}
    assert versioned.get_object_tagging("k").tag_set.tagging_rule == {}
    versioned.put_object_acl("k", "public-read", params=version(first.versionid))
    assert versioned.get_object_acl("k", params=version(first.versionid)).acl == "public-read"
    assert versioned.get_object_acl("k").acl == "default"

    error = error_of(versioned.get_object, "k", params=version("NoSuchVersionHere"))
    assert (error.status, error.code) == (404, "NoSuchVersion")


def test_delete_adds_a_marker_that_hides_the_object(versioned: oss2.Bucket) -> None:
    """DeleteObject without a version id adds a delete marker (`x-oss-delete-marker:
    true` and its id); GET and HEAD are then `404 NoSuchKey` carrying the marker headers,
    listings skip the key, old versions stay readable, and a GET of the marker by id is
    `405 MethodNotAllowed`."""
    kept = versioned.put_object("k", b"kept").versionid
    deleted = versioned.delete_object("k")
    assert deleted.delete_marker is True
    marker = deleted.versionid
    assert marker and marker != kept

    error = error_of(versioned.get_object, "k")
    assert isinstance(error, oss2.exceptions.NoSuchKey)
    assert error.headers["x-oss-delete-marker"] == "true"
    assert error.headers["x-oss-version-id"] == marker
    error = error_of(versioned.head_object, "k")
    assert isinstance(error, oss2.exceptions.NoSuchKey)  # decoded from x-oss-err
    assert error.headers["x-oss-delete-marker"] == "true"
    assert versioned.object_exists("k") is False
    assert list(oss2.ObjectIterator(versioned)) == []

    assert versioned.get_object("k", params=version(kept)).read() == b"kept"
    for call in (versioned.get_object, versioned.head_object):
        error = error_of(call, "k", params=version(marker))
        assert (error.status, error.code) == (405, "MethodNotAllowed")
        assert error.headers["x-oss-delete-marker"] == "true"
    assert isinstance(error_of(versioned.get_object_meta, "k"), oss2.exceptions.NoSuchKey)

    # A second delete stacks another marker.
    again = versioned.delete_object("k")
    assert again.delete_marker is True
    assert again.versionid != marker


def test_deleting_a_marker_by_id_brings_the_object_back(versioned: oss2.Bucket) -> None:
    """Deleting the delete marker itself (by version id) answers with
    `x-oss-delete-marker: true` and its id, and the previous version is current again."""
    kept = versioned.put_object("k", b"back").versionid
    marker = versioned.delete_object("k").versionid
    removed = versioned.delete_object("k", params=version(marker))
    assert removed.delete_marker is True
    assert removed.versionid == marker
    got = versioned.get_object("k")
    assert (got.read(), got.versionid) == (b"back", kept)
    assert [o.key for o in oss2.ObjectIterator(versioned)] == ["k"]


def test_deleting_a_version_removes_it_for_good(versioned: oss2.Bucket) -> None:
    """DeleteObject with a version id removes exactly that version (no marker is added):
    a non-current one vanishes, the current one lets the next newest become current, and
    the deleted id is `404 NoSuchVersion` afterwards."""
    v1 = versioned.put_object("k", b"1").versionid
    v2 = versioned.put_object("k", b"2").versionid
    v3 = versioned.put_object("k", b"3").versionid

    result = versioned.delete_object("k", params=version(v1))
    assert (result.versionid, result.delete_marker) == (v1, None)
    assert error_of(versioned.get_object, "k", params=version(v1)).code == "NoSuchVersion"
    versioned.delete_object("k", params=version(v3))
    got = versioned.get_object("k")
    assert (got.read(), got.versionid) == (b"2", v2)
    listed = versioned.list_object_versions()
    assert [(v.versionid, v.is_latest) for v in listed.versions] == [(v2, True)]
    assert listed.delete_marker == []
    # Deleting an unknown version is a quiet success.
    assert versioned.delete_object("k", params=version("unknownversion")).status == 204


def test_suspended_bucket_uses_the_null_version(versioned: oss2.Bucket) -> None:
    """While Suspended, PutObject overwrites the single `null` version (earlier versions
    stay), DeleteObject replaces it with a `null` delete marker, and re-enabling goes
    back to fresh ids."""
    enabled = versioned.put_object("k", b"enabled").versionid
    set_versioning(versioned, "Suspended")
    assert versioned.put_object("k", b"null 1").versionid == "null"
    assert versioned.put_object("k", b"null 2").versionid == "null"
    listed = versioned.list_object_versions()
    assert [(v.versionid, v.is_latest) for v in listed.versions] == [
        ("null", True),
        (enabled, False),
    ]
    assert versioned.get_object("k", params=version("null")).read() == b"null 2"

    deleted = versioned.delete_object("k")
    assert (deleted.delete_marker, deleted.versionid) == (True, "null")
    listed = versioned.list_object_versions()
    assert [(m.versionid, m.is_latest) for m in listed.delete_marker] == [("null", True)]
    assert [v.versionid for v in listed.versions] == [enabled]
    assert versioned.get_object("k", params=version(enabled)).read() == b"enabled"
    assert isinstance(error_of(versioned.get_object, "k"), oss2.exceptions.NoSuchKey)

    set_versioning(versioned, "Enabled")
    fresh = versioned.put_object("k", b"fresh").versionid
    assert fresh not in ("null", enabled)
    listed = versioned.list_object_versions()
    assert [v.versionid for v in listed.versions] == [fresh, enabled]
    assert [m.versionid for m in listed.delete_marker] == ["null"]


def test_objects_written_before_versioning_become_null_versions(
    oss2_bucket: oss2.Bucket,
) -> None:
    """An object written while versioning was never enabled is the `null` version once it
    is enabled: a new put keeps it as a previous version readable as `null`."""
    oss2_bucket.put_object("k", b"before")
    set_versioning(oss2_bucket, "Enabled")
    after = oss2_bucket.put_object("k", b"after").versionid
    assert oss2_bucket.get_object("k", params=version("null")).read() == b"before"
    listed = oss2_bucket.list_object_versions()
    assert [v.versionid for v in listed.versions] == [after, "null"]


# -- ListObjectVersions against a model --------------------------------------------------


@dataclass
class VersionModel:
    """Every key's versions in creation order: (version id, is delete marker)."""

    history: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)

    def add(self, key: str, version_id: str, marker: bool = False) -> None:
        """Record a new current version (or marker)."""
        versions = self.history.setdefault(key, [])
        if version_id == "null":
            versions[:] = [v for v in versions if v[0] != "null"]
        versions.append((version_id, marker))

    def remove(self, key: str, version_id: str) -> None:
        """Record a permanent deletion."""
        self.history[key] = [v for v in self.history[key] if v[0] != version_id]

    def listing(self, prefix: str = "", delimiter: str = "") -> list[tuple[str, str, bool, bool]]:
        """(key or common prefix, version id, is latest, is marker) as the listing must
        order them: keys in byte order, newest version first, prefixes once."""
        entries: list[tuple[str, str, bool, bool]] = []
        for key in sorted(self.history, key=lambda k: k.encode()):
            if not key.startswith(prefix) or not self.history[key]:
                continue
            index = key.find(delimiter, len(prefix)) if delimiter else -1
            if index >= 0:
                common = key[: index + len(delimiter)]
                if not entries or entries[-1][0] != common:
                    entries.append((common, "", False, False))
                continue
            for position, (version_id, marker) in enumerate(reversed(self.history[key])):
                entries.append((key, version_id, position == 0, marker))
        return entries


def listed_page(result: oss2.models.ListObjectVersionsResult) -> list[tuple[str, str, bool, bool]]:
    """The entries of one ListObjectVersions page (oss2 splits versions, markers and
    prefixes into separate lists)."""
    entries = [(v.key, v.versionid, v.is_latest, False) for v in result.versions]
    entries += [(m.key, m.versionid, m.is_latest, True) for m in result.delete_marker]
    entries += [(p, "", False, False) for p in result.common_prefix]
    return entries


def all_pages(
    bucket: oss2.Bucket, prefix: str, delimiter: str, max_keys: int
) -> list[list[tuple[str, str, bool, bool]]]:
    """Page through ListObjectVersions with key-marker / version-id-marker."""
    pages = []
    key_marker = version_marker = ""
    while True:
        result = bucket.list_object_versions(
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            versionid_marker=version_marker,
            max_keys=max_keys,
        )
        pages.append(listed_page(result))
        assert len(pages[-1]) <= max_keys
        if not result.is_truncated:
            return pages
        key_marker, version_marker = result.next_key_marker, result.next_versionid_marker
        assert len(pages) < 500, "the listing does not end"


def test_list_object_versions_pages_match_the_model(versioned: oss2.Bucket) -> None:
    """Versions and delete markers of many keys, across Enabled and Suspended periods and
    permanent deletions, page through ListObjectVersions (max-keys 1 to 100, with and
    without prefix and delimiter) exactly as the model orders them: by key, newest
    first, `IsLatest` on the first, each entry once, every page in sequence."""
    model = VersionModel()

    def put(key: str) -> str:
        version_id = versioned.put_object(key, key.encode()).versionid
        model.add(key, version_id)
        return str(version_id)

    def delete(key: str) -> None:
        result = versioned.delete_object(key)
        model.add(key, result.versionid, marker=True)

    for key, count in [("a", 3), ("b/1", 1), ("b/2", 2), ("c", 1), ("ü/x", 2), ("d d", 5)]:
        for _ in range(count):
            put(key)
    delete("b/1")
    put("b/1")
    delete("c")
    delete("c")
    doomed = [v for v, _ in model.history["d d"][1:3]]
    for version_id in doomed:
        versioned.delete_object("d d", params=version(version_id))
        model.remove("d d", version_id)
    set_versioning(versioned, "Suspended")
    put("a")
    put("a")
    put("e&<f>")
    delete("ü/x")
    set_versioning(versioned, "Enabled")
    put("e&<f>")

    for prefix, delimiter in [("", ""), ("", "/"), ("b/", ""), ("b", "/"), ("ü", "")]:
        expected = model.listing(prefix, delimiter)
        assert expected
        for max_keys in (1, 2, 3, 7, 100):
            pages = all_pages(versioned, prefix, delimiter, max_keys)
            offset = 0
            for page in pages:
                chunk = expected[offset : offset + len(page)]
                assert sorted(page) == sorted(chunk), (prefix, delimiter, max_keys, offset)
                offset += len(page)
            assert offset == len(expected)


def test_list_object_versions_of_a_key_with_hundreds_of_versions(
    versioned: oss2.Bucket,
) -> None:
    """A key with more versions than the server reads per query (256) lists completely
    and in order, in one page or resumed with a version-id marker deep inside the key."""
    model = VersionModel()
    for key, count in [("before", 1), ("many", 260), ("after", 2)]:
        for _ in range(count):
            model.add(key, versioned.put_object(key, b"").versionid)
    expected = model.listing()
    for max_keys in (1000, 257, 100):
        pages = all_pages(versioned, "", "", max_keys)
        assert [entry for page in pages for entry in sorted(page, key=expected.index)] == (expected)


def test_list_object_versions_reports_every_field(versioned: oss2.Bucket) -> None:
    """Each Version has ETag, size, type, storage class and owner; each DeleteMarker its
    owner; the page echoes the request's markers."""
    put = versioned.put_object("k", b"12345", headers={"x-oss-storage-class": "IA"})
    versioned.delete_object("k")
    listed = versioned.list_object_versions(prefix="k", max_keys=10)
    (entry,) = listed.versions
    assert (entry.key, entry.versionid, entry.is_latest) == ("k", put.versionid, False)
    assert (entry.size, entry.type, entry.storage_class) == (5, "Normal", "IA")
    assert entry.etag == put.etag
    assert entry.owner.id == ACCOUNT_ID
    (marker,) = listed.delete_marker
    assert (marker.key, marker.is_latest, marker.owner.id) == ("k", True, ACCOUNT_ID)
    assert (listed.name, listed.prefix, listed.max_keys) == (versioned.bucket_name, "k", 10)
    assert listed.is_truncated is False


# -- copy, append, batch delete, multipart on versioned buckets -------------------------


def test_copy_from_an_old_version_restores_it(versioned: oss2.Bucket) -> None:
    """CopyObject with `?versionId=` in the source copies that version: copying an old
    version onto its own key makes it current again as a new version, and the response
    names both versions; a delete marker as source is `404 NoSuchKey`."""
    old = versioned.put_object("k", b"old", headers={"x-oss-meta-v": "1"}).versionid
    versioned.put_object("k", b"new")
    restored = versioned.copy_object(versioned.bucket_name, "k", "k", params=version(old))
    assert restored.versionid not in (None, old)
    assert restored.headers["x-oss-copy-source-version-id"] == old
    got = versioned.get_object("k")
    assert (got.read(), got.headers["x-oss-meta-v"]) == (b"old", "1")
    assert len(versioned.list_object_versions().versions) == 3

    marker = versioned.delete_object("k").versionid
    for params in (None, version(marker)):
        error = error_of(versioned.copy_object, versioned.bucket_name, "k", "x", params=params)
        assert isinstance(error, oss2.exceptions.NoSuchKey)
    versioned.copy_object(versioned.bucket_name, "k", "x", params=version(old))
    assert versioned.get_object("x").read() == b"old"


def test_append_on_a_versioned_bucket(versioned: oss2.Bucket) -> None:
    """Appends change the current appendable version in place (same version id); a later
    PutObject makes it a previous version that can no longer be appended to; after a
    delete marker an append at 0 starts a new appendable version."""
    first = versioned.append_object("log", 0, b"ab")
    second = versioned.append_object("log", 2, b"cd")
    assert first.versionid and second.versionid == first.versionid
    assert versioned.get_object("log").read() == b"abcd"
    assert len(versioned.list_object_versions().versions) == 1

    versioned.put_object("log", b"normal")
    error = error_of(versioned.append_object, "log", 6, b"x")
    assert isinstance(error, oss2.exceptions.ObjectNotAppendable)
    old = versioned.get_object("log", params=version(first.versionid))
    assert (old.read(), old.object_type) == (b"abcd", "Appendable")

    versioned.delete_object("log")
    again = versioned.append_object("log", 0, b"new")
    assert again.versionid not in (first.versionid, None)
    assert versioned.get_object("log").read() == b"new"


def test_batch_delete_on_a_versioned_bucket(versioned: oss2.Bucket) -> None:
    """DeleteMultipleObjects adds delete markers for plain keys (reporting DeleteMarker and
    its id) and removes exactly the named versions, reporting a removed marker as such."""
    a1 = versioned.put_object("a", b"1").versionid
    versioned.put_object("b", b"2")
    result = versioned.batch_delete_objects(["a", "b"])
    by_key = {d.key: d for d in result.delete_versions}
    assert set(by_key) == {"a", "b"}
    for deleted in by_key.values():
        assert deleted.delete_marker is True
        assert URL_SAFE.fullmatch(deleted.delete_marker_versionid)
    assert list(oss2.ObjectIterator(versioned)) == []

    marker_a = by_key["a"].delete_marker_versionid
    targets = BatchDeleteObjectVersionList(
        [BatchDeleteObjectVersion("a", marker_a), BatchDeleteObjectVersion("a", a1)]
    )
    removed = versioned.delete_object_versions(targets)
    outcome = {d.versionid: d for d in removed.delete_versions}
    assert set(outcome) == {marker_a, a1}
    assert outcome[marker_a].delete_marker is True
    assert outcome[a1].delete_marker is False
    listed = versioned.list_object_versions(prefix="a")
    assert (listed.versions, listed.delete_marker) == ([], [])


def test_multipart_completion_creates_a_version(versioned: oss2.Bucket) -> None:
    """CompleteMultipartUpload on an Enabled bucket returns the new object's version id,
    and the earlier version stays."""
    earlier = versioned.put_object("big", b"small").versionid
    upload_id = versioned.init_multipart_upload("big").upload_id
    part = versioned.upload_part("big", upload_id, 1, b"multipart body")
    done = versioned.complete_multipart_upload(
        "big", upload_id, [oss2.models.PartInfo(1, part.etag, size=14, part_crc=part.crc)]
    )
    assert done.versionid not in (None, earlier)
    assert versioned.get_object("big").read() == b"multipart body"
    assert versioned.get_object("big", params=version(earlier)).read() == b"small"
