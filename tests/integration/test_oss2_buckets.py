"""Service and bucket operations driven by the official `oss2` SDK against a real
`tidings serve` process: ListBuckets, PutBucket, DeleteBucket, GetBucketInfo/Location/
Stat, bucket ACL and anonymous listing, ListObjects V1 and V2 compared with a brute-force
model, bucket tags and lifecycle configuration documents (spec section 9)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import oss2
import pytest
from oss2.models import (
    AbortMultipartUpload,
    BucketCreateConfig,
    BucketLifecycle,
    FilterNot,
    FilterNotTag,
    LifecycleExpiration,
    LifecycleFilter,
    LifecycleRule,
    NoncurrentVersionExpiration,
    NoncurrentVersionStorageTransition,
    StorageTransition,
    Tagging,
    TaggingRule,
)

from tests.integration.oss2_support import bucket_handle, error_of, new_bucket, remove_bucket
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ACCOUNT_ID, ServerProcess


@pytest.fixture
def named(server: ServerProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    """A handle on a bucket that does not exist yet (removed afterwards if created)."""
    bucket = bucket_handle(server, bucket_name)
    yield bucket
    remove_bucket(bucket)


def auth() -> oss2.Auth:
    """V1 credentials of the test account."""
    return oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)


# -- ListBuckets, PutBucket, DeleteBucket ------------------------------------------------


def test_list_buckets_pages_by_name_with_prefix_and_marker(
    server: ServerProcess, request: pytest.FixtureRequest
) -> None:
    """ListBuckets returns the account's buckets sorted by name, filtered by prefix, after
    a marker, `max-keys` per page with NextMarker; oss2's BucketIterator walks them all."""
    prefix = f"lb-{uuid.uuid4().hex[:8]}-"
    names = [f"{prefix}{suffix}" for suffix in ["c", "a", "e", "b", "d"]]
    buckets = [new_bucket(server, name) for name in names]
    request.addfinalizer(lambda: [remove_bucket(bucket) for bucket in buckets])
    expected = sorted(names)
    service = oss2.Service(auth(), server.oss_url)

    listed = service.list_buckets(prefix=prefix)
    assert [b.name for b in listed.buckets] == expected
    assert listed.is_truncated is False
    first = listed.buckets[0]
    assert first.location == bucket_handle(server, first.name).get_bucket_location().location
    assert first.storage_class == "Standard"
    assert first.extranet_endpoint and first.intranet_endpoint
    assert abs(first.creation_date - datetime.datetime.now().timestamp()) < 300
    assert listed.owner.id == ACCOUNT_ID

    page = service.list_buckets(prefix=prefix, marker=expected[1], max_keys=2)
    assert [b.name for b in page.buckets] == expected[2:4]
    assert (page.is_truncated, page.next_marker) == (True, expected[3])
    assert [b.name for b in oss2.BucketIterator(service, prefix=prefix, max_keys=2)] == expected
    assert service.list_buckets(prefix=prefix + "zz").buckets == []

    for bucket in buckets:
        assert bucket.delete_bucket().status == 204
    assert service.list_buckets(prefix=prefix).buckets == []


def test_create_bucket_with_acl_and_configuration(named: oss2.Bucket, bucket_name: str) -> None:
    """PutBucket stores the ACL, storage class and redundancy type; re-creating it as the
    owner succeeds and updates the ACL, but changing its storage class is
    `409 BucketAlreadyExists`."""
    bucket = named
    bucket.create_bucket(
        oss2.BUCKET_ACL_PUBLIC_READ, BucketCreateConfig(oss2.BUCKET_STORAGE_CLASS_IA, "ZRS")
    )
    info = bucket.get_bucket_info()
    assert (info.name, info.storage_class, info.data_redundancy_type) == (bucket_name, "IA", "ZRS")
    assert info.acl.grant == "public-read"
    bucket.put_object("k", b"x")
    assert bucket.head_object("k").headers["x-oss-storage-class"] == "IA"

    bucket.create_bucket(oss2.BUCKET_ACL_PRIVATE, BucketCreateConfig("IA", "ZRS"))
    assert bucket.get_bucket_acl().acl == "private"
    error = error_of(bucket.create_bucket, oss2.BUCKET_ACL_PRIVATE, BucketCreateConfig("Standard"))
    assert (error.status, error.code) == (409, "BucketAlreadyExists")
    error = error_of(bucket.create_bucket, "open-to-all")
    assert (error.status, error.code) == (400, "InvalidArgument")


def test_delete_bucket_refuses_while_anything_remains(named: oss2.Bucket, bucket_name: str) -> None:
    """DeleteBucket is `409 BucketNotEmpty` while an object, an in-progress multipart
    upload, a previous version or only a delete marker remains; an empty bucket goes
    (`204`) and then is `404 NoSuchBucket`."""
    bucket = named
    bucket.create_bucket()

    def refused() -> None:
        error = error_of(bucket.delete_bucket)
        assert isinstance(error, oss2.exceptions.BucketNotEmpty)
        assert error.details["BucketName"] == bucket_name

    bucket.put_object("k", b"x")
    refused()
    bucket.delete_object("k")

    upload_id = bucket.init_multipart_upload("pending").upload_id
    refused()  # nothing is listed, yet an upload is in progress
    assert list(oss2.ObjectIterator(bucket)) == []
    bucket.abort_multipart_upload("pending", upload_id)

    bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
    version_id = bucket.put_object("v", b"x").versionid
    marker_id = bucket.delete_object("v").versionid
    refused()  # an old version and a delete marker
    bucket.delete_object("v", params={"versionId": version_id})
    refused()  # only the delete marker
    bucket.delete_object("v", params={"versionId": marker_id})

    assert bucket.delete_bucket().status == 204
    assert isinstance(error_of(bucket.delete_bucket), oss2.exceptions.NoSuchBucket)
    assert isinstance(error_of(bucket.get_bucket_info), oss2.exceptions.NoSuchBucket)


def test_invalid_bucket_names_are_refused_by_the_server(server: ServerProcess) -> None:
    """A name oss2 would not send (it checks client-side) is `400 InvalidBucketName` when
    sent anyway through the raw transport."""
    bucket = bucket_handle(server, "ok-name")
    for bad in ["ab", "Upper-case", "-dash-first", "under_score"]:
        error = error_of(bucket._do, "PUT", bad, "")
        assert (error.status, error.code) == (400, "InvalidBucketName")


def test_unimplemented_bucket_subresources_never_fall_through(oss2_bucket: oss2.Bucket) -> None:
    """A sub-resource this server does not implement (cors, website, logging, encryption,
    policy, referer) is `501 NotImplemented`, never the plain operation: oss2's
    `delete_bucket_cors()` on an empty bucket must not delete the bucket, and
    `get_bucket_cors()` must not be answered with an object listing."""
    calls = [
        oss2_bucket.delete_bucket_cors,
        oss2_bucket.delete_bucket_website,
        oss2_bucket.delete_bucket_logging,
        oss2_bucket.delete_bucket_encryption,
        oss2_bucket.delete_bucket_policy,
        oss2_bucket.get_bucket_cors,
        oss2_bucket.get_bucket_referer,
    ]
    for call in calls:
        error = error_of(call)
        assert (error.status, error.code) == (501, "NotImplemented"), call.__name__
    assert oss2_bucket.get_bucket_info().name == oss2_bucket.bucket_name


# -- GetBucketInfo, GetBucketLocation, GetBucketStat ------------------------------------


def test_bucket_info_location_and_stat(oss2_bucket: oss2.Bucket) -> None:
    """GetBucketInfo has every element oss2 requires (owner, ACL, endpoints, versioning
    only once enabled); GetBucketLocation is `oss-<region>`; GetBucketStat counts
    objects, bytes, multipart uploads and parts."""
    info = oss2_bucket.get_bucket_info()
    assert info.name == oss2_bucket.bucket_name
    assert info.owner.id == info.owner.display_name == ACCOUNT_ID
    assert info.acl.grant == "private"
    assert info.storage_class == "Standard"
    assert info.versioning_status is None
    assert info.bucket_encryption_rule.sse_algorithm is None  # oss2 reads "None" so
    assert info.location.startswith("oss-")
    assert oss2_bucket.get_bucket_location().location == info.location

    oss2_bucket.put_object("a", b"12345")
    oss2_bucket.put_object("b", b"123", headers={"x-oss-storage-class": "IA"})
    upload_id = oss2_bucket.init_multipart_upload("m").upload_id
    oss2_bucket.upload_part("m", upload_id, 1, b"part")
    stat = oss2_bucket.get_bucket_stat()
    assert (stat.object_count, stat.storage_size_in_bytes) == (2, 8)
    assert (stat.standard_object_count, stat.standard_storage) == (1, 5)
    assert (stat.infrequent_access_object_count, stat.infrequent_access_storage) == (1, 3)
    assert (stat.multi_part_upload_count, stat.multipart_part_count) == (1, 1)
    assert stat.delete_marker_count == 0

    oss2_bucket.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
    assert oss2_bucket.get_bucket_info().versioning_status == "Enabled"


# -- bucket ACL and anonymous access -----------------------------------------------------


def test_bucket_acl_decides_anonymous_listing_and_writing(
    oss2_bucket: oss2.Bucket, server: ServerProcess
) -> None:
    """A private bucket refuses anonymous listing and reads; public-read allows listing
    and reading but not writing; public-read-write allows writing too. Bucket settings
    (ACL, info) stay the owner's."""
    oss2_bucket.put_object("dir/a", b"a")
    stranger = oss2.Bucket(oss2.AnonymousAuth(), server.oss_url, oss2_bucket.bucket_name)
    assert oss2_bucket.get_bucket_acl().acl == "private"
    for call in (stranger.list_objects, stranger.list_objects_v2):
        assert isinstance(error_of(call), oss2.exceptions.AccessDenied)

    oss2_bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert oss2_bucket.get_bucket_acl().acl == "public-read"
    assert [o.key for o in oss2.ObjectIterator(stranger)] == ["dir/a"]
    assert [o.key for o in oss2.ObjectIteratorV2(stranger, delimiter="/")] == ["dir/"]
    assert stranger.get_object("dir/a").read() == b"a"
    assert isinstance(error_of(stranger.put_object, "x", b"x"), oss2.exceptions.AccessDenied)
    assert isinstance(error_of(stranger.get_bucket_acl), oss2.exceptions.AccessDenied)
    assert isinstance(
        error_of(stranger.put_bucket_acl, oss2.BUCKET_ACL_PUBLIC_READ_WRITE),
        oss2.exceptions.AccessDenied,
    )

    oss2_bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    stranger.put_object("by-anyone", b"hi")
    assert oss2_bucket.get_object("by-anyone").read() == b"hi"
    stranger.delete_object("by-anyone")
    assert not oss2_bucket.object_exists("by-anyone")
    assert isinstance(error_of(stranger.get_bucket_info), oss2.exceptions.AccessDenied)
    assert isinstance(error_of(stranger.delete_bucket), oss2.exceptions.AccessDenied)
    error = error_of(oss2_bucket.put_bucket_acl, "everyone")
    assert (error.status, error.code) == (400, "InvalidArgument")


def test_listing_buckets_needs_a_signature(server: ServerProcess) -> None:
    """ListBuckets is never anonymous."""
    service = oss2.Service(oss2.AnonymousAuth(), server.oss_url)
    assert isinstance(error_of(service.list_buckets), oss2.exceptions.AccessDenied)


# -- ListObjects V1 and V2 against a model ----------------------------------------------


def listing_keys() -> list[str]:
    """A few hundred keys laid out so that pages end inside and at the edges of common
    prefixes: flat keys, directories of 1-6 keys, nested directories, placeholders,
    unicode, XML-special characters and other delimiters."""
    keys = [f"flat-{i:03d}" for i in range(60)]
    for d in range(40):
        keys += [f"dir{d:02d}/f{j}" for j in range(d % 6 + 1)]
    keys += [f"dir07/sub{s}/leaf{j}" for s in range(3) for j in range(4)]
    keys += ["dir03/", "dir03//double", "dir10/deep/er/est"]
    keys += [f"ünï/{name}" for name in ["a", "b", "日本語", "😀"]]
    keys += ["日本/1", "日本/2", "日本語", "émoji-😀", "z-last"]
    keys += ["a&b<c>'d\".txt", "sp ace/x", "plus+/y", "per%cent/z", "tab\tkey"]
    keys += [f"x-{i}-y-{j}" for i in range(5) for j in range(5)]
    return keys


def model_listing(keys: list[str], prefix: str, delimiter: str, after: str = "") -> list[str]:
    """What a whole listing must yield, by brute force: keys in UTF-8 byte order after
    `after`, with every key holding the delimiter past the prefix collapsed into one
    common prefix (marked by a trailing delimiter, returned where its first key sorts)."""
    entries: list[str] = []
    for key in sorted(keys, key=lambda k: k.encode()):
        if not key.startswith(prefix) or key.encode() <= after.encode():
            continue
        index = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = key[: index + len(delimiter)] if index >= 0 else key
        if entry.encode() <= after.encode():
            continue  # the marker is this common prefix: skip all of its keys
        if not entries or entries[-1] != entry:
            entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def listing_bucket(server: ServerProcess) -> Iterator[oss2.Bucket]:
    """One bucket filled with `listing_keys()`, shared by the listing tests."""
    bucket = new_bucket(server, f"list-{uuid.uuid4().hex[:12]}")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: bucket.put_object(key, key.encode()), listing_keys()))
    yield bucket
    remove_bucket(bucket)


LISTING_CASES = [
    ("", "", 1000),
    ("", "", 37),
    ("", "/", 7),
    ("", "/", 1),
    ("dir", "/", 5),
    ("dir0", "/", 3),
    ("dir07/", "/", 2),
    ("dir07/", "", 4),
    ("ünï/", "/", 1),
    ("日本", "/", 2),
    ("", "-", 6),
    ("x-", "-", 2),
    ("x-1", "-y-", 1),
    ("nothing-here", "/", 10),
]


def entries_of(infos: list[oss2.models.SimplifiedObjectInfo]) -> list[str]:
    """Listing results as model entries (common prefixes end with the delimiter)."""
    return [info.key for info in infos]


@pytest.mark.parametrize(("prefix", "delimiter", "max_keys"), LISTING_CASES)
def test_object_iterator_v1_matches_the_model(
    listing_bucket: oss2.Bucket, prefix: str, delimiter: str, max_keys: int
) -> None:
    """oss2.ObjectIterator (ListObjects V1, encoding-type=url, marker paging) yields
    exactly the model's keys and common prefixes, once each, in order."""
    infos = list(
        oss2.ObjectIterator(listing_bucket, prefix=prefix, delimiter=delimiter, max_keys=max_keys)
    )
    expected = model_listing(listing_keys(), prefix, delimiter)
    assert entries_of(infos) == expected
    for info in infos:
        if info.is_prefix():
            assert info.key.endswith(delimiter)
        else:
            assert info.size == len(info.key.encode())
            assert info.type == "Normal"
            assert info.storage_class == "Standard"
            assert info.owner.id == ACCOUNT_ID


@pytest.mark.parametrize(("prefix", "delimiter", "max_keys"), LISTING_CASES)
def test_object_iterator_v2_matches_the_model(
    listing_bucket: oss2.Bucket, prefix: str, delimiter: str, max_keys: int
) -> None:
    """oss2.ObjectIteratorV2 (ListObjectsV2, continuation tokens) yields exactly the
    model's entries, both with `encoding-type=url` and without any encoding."""
    expected = model_listing(listing_keys(), prefix, delimiter)
    for encoding in ("url", None):
        infos = oss2.ObjectIteratorV2(
            listing_bucket,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            encoding_type=encoding,
        )
        assert entries_of(list(infos)) == expected


def test_v1_pages_respect_max_keys_and_resume_after_a_common_prefix(
    listing_bucket: oss2.Bucket,
) -> None:
    """Each V1 page holds at most max-keys keys plus prefixes, is truncated exactly when
    more remain, and its NextMarker (possibly a common prefix) resumes without repeats;
    an explicit marker that is a common prefix skips every key under it."""
    keys = listing_keys()
    expected = model_listing(keys, "", "/")
    seen: list[str] = []
    marker = ""
    while True:
        page = listing_bucket.list_objects(delimiter="/", marker=marker, max_keys=4)
        entries = [o.key for o in page.object_list] + page.prefix_list
        assert len(entries) <= 4
        seen += sorted(entries, key=lambda e: e.encode())
        if not page.is_truncated:
            break
        assert page.next_marker == seen[-1]
        marker = page.next_marker
    assert seen == expected

    page = listing_bucket.list_objects(delimiter="/", marker="dir03/", max_keys=3)
    entries = sorted([o.key for o in page.object_list] + page.prefix_list)
    assert entries == model_listing(keys, "", "/", after="dir03/")[:3]
    assert entries[0] == "dir04/"


def test_v2_start_after_and_fetch_owner(listing_bucket: oss2.Bucket) -> None:
    """V2 `start-after` starts after a key (or skips a whole common prefix); Owner
    appears only with fetch-owner."""
    keys = listing_keys()
    page = listing_bucket.list_objects_v2(start_after="flat-057", max_keys=5)
    assert [o.key for o in page.object_list] == model_listing(keys, "", "", "flat-057")[:5]
    assert page.object_list[0].owner is None
    page = listing_bucket.list_objects_v2(
        start_after="dir05/", delimiter="/", max_keys=3, fetch_owner=True
    )
    assert page.prefix_list == ["dir06/", "dir07/", "dir08/"]
    page = listing_bucket.list_objects_v2(prefix="flat-00", fetch_owner=True, max_keys=1)
    assert page.object_list[0].owner.id == ACCOUNT_ID
    assert page.is_truncated and page.next_continuation_token


def test_max_keys_out_of_range_is_invalid_argument(listing_bucket: oss2.Bucket) -> None:
    """max-keys must be 1-1000: 0 (a page that could never make progress: truncated with
    an empty next marker, so a paginator would loop forever) and 1001 are
    `400 InvalidArgument`."""
    calls = (
        listing_bucket.list_objects,
        listing_bucket.list_objects_v2,
        listing_bucket.list_object_versions,
    )
    for call in calls:
        for max_keys in (0, 1001):
            error = error_of(call, max_keys=max_keys)
            assert (error.status, error.code) == (400, "InvalidArgument"), (call, max_keys)


def test_listing_a_missing_bucket_is_no_such_bucket(server: ServerProcess) -> None:
    """ListObjects on a missing bucket is `404 NoSuchBucket`."""
    bucket = bucket_handle(server, f"gone-{uuid.uuid4().hex[:12]}")
    assert isinstance(error_of(bucket.list_objects), oss2.exceptions.NoSuchBucket)


# -- bucket tags ---------------------------------------------------------------------------


def test_bucket_tags_put_get_delete(oss2_bucket: oss2.Bucket) -> None:
    """PutBucketTags replaces the set, GetBucketTags returns it, DeleteBucketTags removes
    all of it; a bucket without tags answers `404 NoSuchTagSet`."""
    error = error_of(oss2_bucket.get_bucket_tagging)
    assert (error.status, error.code) == (404, "NoSuchTagSet")
    rule = TaggingRule()
    rule.add("team", "storage")
    rule.add("cost centre", "<42>&")
    oss2_bucket.put_bucket_tagging(Tagging(rule))
    tags = oss2_bucket.get_bucket_tagging().tag_set.tagging_rule
    assert tags == {"team": "storage", "cost centre": "<42>&"}

    replacement = TaggingRule()
    replacement.add("only", "one")
    oss2_bucket.put_bucket_tagging(Tagging(replacement))
    assert oss2_bucket.get_bucket_tagging().tag_set.tagging_rule == {"only": "one"}
    assert oss2_bucket.delete_bucket_tagging().status == 204
    assert error_of(oss2_bucket.get_bucket_tagging).code == "NoSuchTagSet"


# -- lifecycle configuration documents ---------------------------------------------------


def full_lifecycle() -> BucketLifecycle:
    """Rules using every element oss2 can express."""
    tags = TaggingRule()
    tags.add("type", "log")
    return BucketLifecycle(
        [
            LifecycleRule(
                "archive-logs",
                "logs/",
                status=LifecycleRule.ENABLED,
                expiration=LifecycleExpiration(days=720),
                abort_multipart_upload=AbortMultipartUpload(days=7),
                storage_transitions=[
                    StorageTransition(days=30, storage_class="IA"),
                    StorageTransition(days=60, storage_class="Archive"),
                    StorageTransition(days=180, storage_class="ColdArchive"),
                ],
                tagging=Tagging(tags),
                noncurrent_version_expiration=NoncurrentVersionExpiration(60),
                noncurrent_version_sotrage_transitions=[
                    NoncurrentVersionStorageTransition(30, "IA")
                ],
                filter=LifecycleFilter(
                    [FilterNot("logs/keep/", FilterNotTag("keep", "yes"))],
                    object_size_greater_than=500,
                    object_size_less_than=64000,
                ),
            ),
            LifecycleRule(
                "by-date",
                "tmp/",
                status=LifecycleRule.DISABLED,
                expiration=LifecycleExpiration(created_before_date=datetime.date(2023, 1, 1)),
                abort_multipart_upload=AbortMultipartUpload(
                    created_before_date=datetime.date(2022, 6, 30)
                ),
            ),
            LifecycleRule(
                "markers",
                "versions/",
                expiration=LifecycleExpiration(expired_detete_marker=True),
            ),
        ]
    )


def test_lifecycle_round_trips_through_oss2_models(oss2_bucket: oss2.Bucket) -> None:
    """PutBucketLifecycle stores the document; GetBucketLifecycle gives back every rule
    oss2 wrote, element for element (dates in the `.000Z` form oss2 parses);
    DeleteBucketLifecycle removes it and a GET is then `404 NoSuchLifecycle`."""
    error = error_of(oss2_bucket.get_bucket_lifecycle)
    assert isinstance(error, oss2.exceptions.NoSuchLifecycle)
    oss2_bucket.put_bucket_lifecycle(full_lifecycle())
    rules = {rule.id: rule for rule in oss2_bucket.get_bucket_lifecycle().rules}
    assert list(rules) == ["archive-logs", "by-date", "markers"]

    logs = rules["archive-logs"]
    assert (logs.prefix, logs.status) == ("logs/", "Enabled")
    assert logs.expiration.days == 720
    assert logs.abort_multipart_upload.days == 7
    assert [(t.days, t.storage_class) for t in logs.storage_transitions] == [
        (30, "IA"),
        (60, "Archive"),
        (180, "ColdArchive"),
    ]
    assert logs.tagging.tag_set.tagging_rule == {"type": "log"}
    assert logs.noncurrent_version_expiration.noncurrent_days == 60
    assert [
        (t.noncurrent_days, t.storage_class) for t in logs.noncurrent_version_sotrage_transitions
    ] == [(30, "IA")]
    assert logs.filter.object_size_greater_than == 500
    assert logs.filter.object_size_less_than == 64000
    (exclusion,) = logs.filter.filter_not
    assert exclusion.prefix == "logs/keep/"
    assert (exclusion.tag.key, exclusion.tag.value) == ("keep", "yes")

    dated = rules["by-date"]
    assert (dated.prefix, dated.status) == ("tmp/", "Disabled")
    assert dated.expiration.created_before_date == datetime.date(2023, 1, 1)
    assert dated.abort_multipart_upload.created_before_date == datetime.date(2022, 6, 30)
    assert rules["markers"].expiration.expired_detete_marker is True

    replacement = BucketLifecycle(
        [LifecycleRule("only", "", expiration=LifecycleExpiration(days=1))]
    )
    oss2_bucket.put_bucket_lifecycle(replacement)
    (only,) = oss2_bucket.get_bucket_lifecycle().rules
    assert (only.id, only.prefix, only.expiration.days) == ("only", "", 1)

    assert oss2_bucket.delete_bucket_lifecycle().status == 204
    assert isinstance(error_of(oss2_bucket.get_bucket_lifecycle), oss2.exceptions.NoSuchLifecycle)
    assert oss2_bucket.delete_bucket_lifecycle().status == 204  # also when there is none


def test_invalid_lifecycle_is_refused(oss2_bucket: oss2.Bucket) -> None:
    """A rule without any action, or with transitions out of order, is a 400 and
    leaves the stored configuration unchanged."""
    oss2_bucket.put_bucket_lifecycle(
        BucketLifecycle([LifecycleRule("keep", "", expiration=LifecycleExpiration(days=9))])
    )
    no_action = BucketLifecycle([LifecycleRule("empty", "x/")])
    backwards = BucketLifecycle(
        [
            LifecycleRule(
                "backwards",
                "y/",
                storage_transitions=[
                    StorageTransition(days=90, storage_class="IA"),
                    StorageTransition(days=30, storage_class="Archive"),
                ],
            )
        ]
    )
    for config in (no_action, backwards):
        error = error_of(oss2_bucket.put_bucket_lifecycle, config)
        assert error.status == 400
        assert error.code in ("InvalidArgument", "MalformedXML")
    (kept,) = oss2_bucket.get_bucket_lifecycle().rules
    assert (kept.id, kept.expiration.days) == ("keep", 9)
