"""OSS request signatures (spec 4.1-4.7): V1, V4, legacy V2, and their presigned forms.

Three kinds of evidence:

* the test vectors of spec 4.9, byte for byte;
* the official SDKs' own signers (`oss2` and `alibabacloud-oss-v2`) driven through
  their full request pipelines into a transport adapter that captures what would go on
  the wire; each captured request is decoded the way the HTTP layer decodes it and must
  authenticate, and tampering with it must fail with the documented code;
* a property test over random keys, parameters and metadata for all five SDK signers.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import alibabacloud_oss_v2 as ossv2
import oss2
import pytest
import requests
from alibabacloud_oss_v2.signer import SignerV4
from alibabacloud_oss_v2.transport import RequestsHttpClient
from alibabacloud_oss_v2.types import HttpRequest, SigningContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidings.auth import oss_v1, oss_v2, oss_v4
from tidings.auth.keys import AccessKey, KeyRing
from tidings.auth.oss import Authenticated, SignedRequest, authenticate
from tidings.errors import ServiceError

AK, SK = "AKIDEXAMPLE", "SECRETEXAMPLEKEY"
KEY = AccessKey(AK, SK, "1234567890")
KEYS = KeyRing([KEY])
ENDPOINT = "http://127.0.0.1:9100"
BUCKET = "examplebucket"
REGION = "cn-hangzhou"
# Spec 4.9: 2022-11-17 03:04:05 UTC.
VECTOR_NOW = 1668654245.0
VECTOR_DATE = "Thu, 17 Nov 2022 03:04:05 GMT"
VECTOR_STAMP = "20221117T030405Z"
VECTOR_CREDENTIAL = f"{AK}/20221117/{REGION}/oss/aliyun_v4_request"

# Keys chosen to break naive encoders: spaces, '+', '/', '%', '?', '#', '&', '=',
# non-ASCII, doubled slashes and dot segments (which must not be normalised).
AWKWARD_KEYS = [
    "dir/a b+c.txt",
    "100% sure?yes#frag&x=y",
    "unicode/中文 é ü.txt",
    "~tilde*star(1)'!;,:@$.txt",
    "a//double/./dot/../x",
]


def has_dot_segment(key: str) -> bool:
    """Whether the HTTP stack (urllib3) would drop part of the path before sending.

    The v2 SDK keeps '/' literal in the path, and urllib3 removes '.' and '..' segments
    from it, so such keys never reach any server as signed; oss2 encodes '/' and only a
    whole key of '.' or '..' is affected. Nothing a server can do about that.
    """
    return any(segment in (".", "..") for segment in key.split("/"))


V2_SDK_KEYS = [key for key in AWKWARD_KEYS if not has_dot_segment(key)]


def rejects(request: SignedRequest, code: str, *, now: float, keys: KeyRing = KEYS) -> ServiceError:
    """Authenticate, expecting `code`; return the error for further checks."""
    with pytest.raises(ServiceError) as caught:
        authenticate(request, keys, now)
    assert caught.value.code == code, caught.value.message
    return caught.value


def replace_headers(request: SignedRequest, **changes: str) -> SignedRequest:
    """The request with some headers changed (names with '_' for '-')."""
    headers = dict(request.headers)
    headers.update({name.replace("_", "-"): value for name, value in changes.items()})
    return SignedRequest(request.method, request.bucket, request.key, request.query, headers)


def replace_key(request: SignedRequest, key: str | None) -> SignedRequest:
    """The request aimed at another object."""
    return SignedRequest(request.method, request.bucket, key, request.query, request.headers)


# ---------------------------------------------------------------------------------------
# Spec 4.9 test vectors


def test_vector_v1_put_with_metadata() -> None:
    headers = {
        "content-md5": "XUFAKrxLKna5cZ2REBfFkg==",
        "content-type": "text/plain",
        "date": VECTOR_DATE,
        "x-oss-meta-author": "alice",
    }
    resource = oss_v1.canonical_resource(BUCKET, "dir/a.txt", [])
    text = oss_v1.string_to_sign("PUT", headers, VECTOR_DATE, resource)
    assert text == (
        "PUT\nXUFAKrxLKna5cZ2REBfFkg==\ntext/plain\nThu, 17 Nov 2022 03:04:05 GMT\n"
        "x-oss-meta-author:alice\n/examplebucket/dir/a.txt"
    )
    assert oss_v1.sign(SK, text) == "i2XScA7uVoOtZoobg0e/KrkyTlU="
    headers["authorization"] = "OSS AKIDEXAMPLE:i2XScA7uVoOtZoobg0e/KrkyTlU="
    request = SignedRequest("PUT", BUCKET, "dir/a.txt", [], headers)
    assert authenticate(request, KEYS, VECTOR_NOW) == Authenticated(KEY, "v1")


def test_vector_v1_bucket_acl() -> None:
    resource = oss_v1.canonical_resource(BUCKET, None, [("acl", "")])
    text = oss_v1.string_to_sign("GET", {"date": VECTOR_DATE}, VECTOR_DATE, resource)
    assert text == "GET\n\n\nThu, 17 Nov 2022 03:04:05 GMT\n/examplebucket/?acl"
    headers = {"date": VECTOR_DATE, "authorization": "OSS AKIDEXAMPLE:CElCFIsuVtVhDsXeOYPrmygN4co="}
    request = SignedRequest("GET", BUCKET, None, [("acl", "")], headers)
    assert authenticate(request, KEYS, VECTOR_NOW) == Authenticated(KEY, "v1")


def test_vector_v1_presigned() -> None:
    query = [
        ("OSSAccessKeyId", AK),
        ("Expires", "1668657845"),
        ("Signature", "uZW4JCzh25lOAKWNbamEeRk1opI="),
    ]
    resource = oss_v1.canonical_resource(BUCKET, "dir/a.txt", query)
    text = oss_v1.string_to_sign("GET", {}, "1668657845", resource)
    assert text == "GET\n\n\n1668657845\n/examplebucket/dir/a.txt"
    assert oss_v1.sign(SK, text) == "uZW4JCzh25lOAKWNbamEeRk1opI="
    url = (
        "/examplebucket/dir/a.txt?OSSAccessKeyId=AKIDEXAMPLE&Expires=1668657845"
        "&Signature=uZW4JCzh25lOAKWNbamEeRk1opI%3D"
    )
    request = decode("GET", url, {})
    assert authenticate(request, KEYS, VECTOR_NOW) == Authenticated(KEY, "v1-presigned")
    error = rejects(request, "AccessDenied", now=1668657846.0)
    assert error.message == "Request has expired."


V4_RANGED_CANONICAL = (
    "GET\n/examplebucket/dir/a%20b.txt\n"
    "response-content-type=text%2Fplain&versionId=CAEQ%2Bxyz\n"
    "x-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20221117T030405Z\n\n\nUNSIGNED-PAYLOAD"
)


def test_vector_v4_ranged_get_with_query() -> None:
    headers = {
        "range": "bytes=0-9",
        "x-oss-date": VECTOR_STAMP,
        "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
        "authorization": f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},Signature="
        "15ed2ff72bd1766d1761428f46649e5499a686ffae9d4e2eb63c863d26831857",
    }
    request = decode(
        "GET",
        "/examplebucket/dir/a%20b.txt?versionId=CAEQ%2Bxyz&response-content-type=text%2Fplain",
        headers,
    )
    canonical = oss_v4.canonical_request(request, [])
    assert canonical == V4_RANGED_CANONICAL
    text = oss_v4.string_to_sign(
        VECTOR_STAMP, f"20221117/{REGION}/oss/aliyun_v4_request", canonical
    )
    assert text == (
        "OSS4-HMAC-SHA256\n20221117T030405Z\n20221117/cn-hangzhou/oss/aliyun_v4_request\n"
        "d18807a11b8edadea24966cd21302d8a64e019a16a73bb443d75b5a6024a6546"
    )
    assert authenticate(request, KEYS, VECTOR_NOW) == Authenticated(KEY, "v4")


def test_vector_v4_service_level() -> None:
    headers = {
        "x-oss-date": VECTOR_STAMP,
        "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
        "authorization": f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},Signature="
        "1a695f2ae2e4a55b7f5267ec4884e68aa72e9e86517407617d678753c87c7457",
    }
    request = SignedRequest("GET", None, None, [], headers)
    assert oss_v4.canonical_request(request, []) == (
        "GET\n/\n\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20221117T030405Z\n\n\n"
        "UNSIGNED-PAYLOAD"
    )
    assert authenticate(request, KEYS, VECTOR_NOW) == Authenticated(KEY, "v4")


V4_PRESIGNED_URL = (
    "/examplebucket/dir/a.txt?x-oss-signature-version=OSS4-HMAC-SHA256"
    "&x-oss-date=20221117T030405Z&x-oss-expires=3600"
    "&x-oss-credential=AKIDEXAMPLE%2F20221117%2Fcn-hangzhou%2Foss%2Faliyun_v4_request"
    "&x-oss-signature=1f5239494b52f63d91f95048621ba4d31eef8bf43cc3cec0045c421e949e70e4"
)


def test_vector_v4_presigned() -> None:
    request = decode("GET", V4_PRESIGNED_URL, {})
    assert oss_v4.canonical_request(request, [], frozenset({"x-oss-signature"})) == (
        "GET\n/examplebucket/dir/a.txt\n"
        "x-oss-credential=AKIDEXAMPLE%2F20221117%2Fcn-hangzhou%2Foss%2Faliyun_v4_request"
        "&x-oss-date=20221117T030405Z&x-oss-expires=3600"
        "&x-oss-signature-version=OSS4-HMAC-SHA256\n\n\nUNSIGNED-PAYLOAD"
    )
    assert authenticate(request, KEYS, VECTOR_NOW) == Authenticated(KEY, "v4-presigned")
    # Valid until x-oss-date + 3600 s, and from 15 minutes before x-oss-date.
    assert authenticate(request, KEYS, VECTOR_NOW + 3600).scheme == "v4-presigned"
    assert rejects(request, "AccessDenied", now=VECTOR_NOW + 3601).message == (
        "Request has expired."
    )
    assert authenticate(request, KEYS, VECTOR_NOW - 900).scheme == "v4-presigned"
    rejects(request, "AccessDenied", now=VECTOR_NOW - 901)


def test_v4_signing_key_derivation_matches_both_sdks() -> None:
    """kSigning per spec 4.4, against the v2 SDK's own derivation (via a signature)."""
    derived = oss_v4.signing_key(SK, "20221117", REGION)
    reference = SignerV4()._calc_signature(SK, "20221117", REGION, "oss", "text")
    assert oss_v4.sign(derived, "text") == reference


# ---------------------------------------------------------------------------------------
# Capturing what the SDKs would send


class Capture(requests.adapters.BaseAdapter):
    """A transport adapter that records each prepared request instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(request)
        raise requests.ConnectionError("captured, not sent")

    def close(self) -> None:
        pass


def decode(method: str, url: str, headers: Mapping[str, Any]) -> SignedRequest:
    """What the HTTP layer makes of a request (spec 1.2): path style, the path
    percent-decoded into bucket and key, the query form-decoded, header names
    lower-cased and values read as latin-1, plus the Host header the client adds."""
    parts = urlsplit(url)
    bucket, _, rest = parts.path[1:].partition("/")
    query = []
    for item in parts.query.split("&"):
        if item:
            name, _, value = item.partition("=")
            query.append((unquote_plus(name), unquote_plus(value)))
    lowered = {
        name.lower(): value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for name, value in headers.items()
        if value is not None
    }
    lowered.setdefault("host", parts.netloc or "127.0.0.1:9100")
    return SignedRequest(method, unquote(bucket) or None, unquote(rest) or None, query, lowered)


def captured(capture: Capture, call: Callable[[], object]) -> SignedRequest:
    """Run an SDK call whose transport is `capture` and decode the request it sent."""
    with pytest.raises((oss2.exceptions.RequestError, ossv2.exceptions.OperationError)):
        call()
    sent = capture.sent[-1]
    assert sent.method is not None and sent.url is not None
    return decode(sent.method, sent.url, sent.headers)


OSS2_AUTHS: dict[str, Callable[[str | None], Any]] = {
    "v1": lambda token: oss2.StsAuth(AK, SK, token, "v1") if token else oss2.Auth(AK, SK),
    "v4": lambda token: oss2.StsAuth(AK, SK, token, "v4") if token else oss2.AuthV4(AK, SK),
    "v2": lambda token: oss2.StsAuth(AK, SK, token, "v2") if token else oss2.AuthV2(AK, SK),
}


def oss2_bucket(version: str, capture: Capture, token: str | None = None) -> oss2.Bucket:
    """An oss2 Bucket signing with `version` whose transport is `capture`."""
    session = oss2.Session(adapter=capture)
    return oss2.Bucket(OSS2_AUTHS[version](token), ENDPOINT, BUCKET, session=session, region=REGION)


def v2_client(version: str, capture: Capture, token: str | None = None) -> ossv2.Client:
    """An alibabacloud-oss-v2 Client signing with `version` whose transport is `capture`."""
    session = requests.Session()
    session.mount("http://", capture)
    config = ossv2.config.Config(
        region=REGION,
        endpoint=ENDPOINT,
        signature_version=version,
        credentials_provider=ossv2.credentials.StaticCredentialsProvider(AK, SK, token),
        http_client=RequestsHttpClient(session=session),
        retry_max_attempts=1,
    )
    return ossv2.Client(config)


OSS2_CALLS: dict[str, Callable[[oss2.Bucket, str], object]] = {
    "put-with-metadata": lambda b, key: b.put_object(
        key, b"hello", headers={"Content-Type": "text/plain", "x-oss-meta-Author": "alice"}
    ),
    "ranged-get-versioned": lambda b, key: b.get_object(
        key,
        byte_range=(0, 9),
        params={"versionId": "CAEQ+xyz/=", "response-content-type": "text/plain; a=b"},
    ),
    "process": lambda b, key: b.get_object(key, process="image/resize,w_100"),
    "initiate-multipart": lambda b, key: b.init_multipart_upload(key),
    "upload-part": lambda b, key: b.upload_part(key, "0004B9894A22E5B1888A1E29F823", 3, b"part"),
    "append": lambda b, key: b.append_object(key, 5, b"more"),
    "delete-version": lambda b, key: b.delete_object(key, params={"versionId": "v 1+2"}),
    "object-acl": lambda b, key: b.put_object_acl(key, oss2.OBJECT_ACL_PUBLIC_READ),
    "copy": lambda b, key: b.copy_object(BUCKET, key, key + ".copy"),
    "bucket-acl": lambda b, key: b.get_bucket_acl(),
    "list": lambda b, key: b.list_objects(prefix=key, delimiter="/", max_keys=7),
}

V2_CALLS: dict[str, Callable[[ossv2.Client, str], object]] = {
    "put-with-metadata": lambda c, key: c.put_object(
        ossv2.PutObjectRequest(
            bucket=BUCKET,
            key=key,
            body=b"hello",
            content_type="text/plain",
            metadata={"Author": "alice"},
        )
    ),
    "ranged-get-versioned": lambda c, key: c.get_object(
        ossv2.GetObjectRequest(
            bucket=BUCKET,
            key=key,
            range_header="bytes=0-9",
            version_id="CAEQ+xyz/=",
            response_content_type="text/plain; a=b",
        )
    ),
    "process": lambda c, key: c.get_object(
        ossv2.GetObjectRequest(bucket=BUCKET, key=key, process="image/resize,w_100")
    ),
    "initiate-multipart": lambda c, key: c.initiate_multipart_upload(
        ossv2.InitiateMultipartUploadRequest(bucket=BUCKET, key=key)
    ),
    "upload-part": lambda c, key: c.upload_part(
        ossv2.UploadPartRequest(
            bucket=BUCKET,
            key=key,
            upload_id="0004B9894A22E5B1888A1E29F823",
            part_number=3,
            body=b"part",
        )
    ),
    "append": lambda c, key: c.append_object(
        ossv2.AppendObjectRequest(bucket=BUCKET, key=key, position=5, body=b"more")
    ),
    "delete-version": lambda c, key: c.delete_object(
        ossv2.DeleteObjectRequest(bucket=BUCKET, key=key, version_id="v 1+2")
    ),
    "copy": lambda c, key: c.copy_object(
        ossv2.CopyObjectRequest(bucket=BUCKET, key=key + ".copy", source_key=key)
    ),
    "bucket-acl": lambda c, key: c.get_bucket_acl(ossv2.GetBucketAclRequest(bucket=BUCKET)),
    "list": lambda c, key: c.list_objects(
        ossv2.ListObjectsRequest(bucket=BUCKET, prefix=key, delimiter="/", max_keys=7)
    ),
}


@pytest.mark.parametrize("key", AWKWARD_KEYS)
@pytest.mark.parametrize("operation", sorted(OSS2_CALLS))
@pytest.mark.parametrize("version", ["v1", "v4", "v2"])
def test_oss2_requests_authenticate(version: str, operation: str, key: str) -> None:
    capture = Capture()
    request = captured(capture, lambda: OSS2_CALLS[operation](oss2_bucket(version, capture), key))
    assert authenticate(request, KEYS, time.time()) == Authenticated(KEY, version)


@pytest.mark.parametrize("key", V2_SDK_KEYS)
@pytest.mark.parametrize("operation", sorted(V2_CALLS))
@pytest.mark.parametrize("version", ["v1", "v4"])
def test_v2_sdk_requests_authenticate(version: str, operation: str, key: str) -> None:
    capture = Capture()
    request = captured(capture, lambda: V2_CALLS[operation](v2_client(version, capture), key))
    assert authenticate(request, KEYS, time.time()) == Authenticated(KEY, version)


@pytest.mark.parametrize("version", ["v1", "v4", "v2"])
def test_oss2_list_buckets_authenticates(version: str) -> None:
    capture = Capture()
    service = oss2.Service(
        OSS2_AUTHS[version](None), ENDPOINT, session=oss2.Session(adapter=capture), region=REGION
    )
    request = captured(capture, service.list_buckets)
    assert (request.bucket, request.key) == (None, None)
    assert authenticate(request, KEYS, time.time()) == Authenticated(KEY, version)


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_v2_sdk_list_buckets_authenticates(version: str) -> None:
    capture = Capture()
    client = v2_client(version, capture)
    request = captured(capture, lambda: client.list_buckets(ossv2.ListBucketsRequest()))
    assert (request.bucket, request.key) == (None, None)
    assert authenticate(request, KEYS, time.time()) == Authenticated(KEY, version)


def test_v1_accepts_both_subresource_candidates() -> None:
    """oss2 signs x-oss-process as a sub-resource, the v2 SDK does not (spec 4.2)."""
    key = "img/cat.jpg"
    capture = Capture()
    by_oss2 = captured(capture, lambda: OSS2_CALLS["process"](oss2_bucket("v1", capture), key))
    by_v2 = captured(capture, lambda: V2_CALLS["process"](v2_client("v1", capture), key))
    assert by_oss2.query == by_v2.query == [("x-oss-process", "image/resize,w_100")]
    now = time.time()
    assert authenticate(by_oss2, KEYS, now).scheme == "v1"
    assert authenticate(by_v2, KEYS, now).scheme == "v1"
    # Something signed over neither candidate is still refused.
    date = by_oss2.headers["date"]
    text = f"GET\n\n\n{date}\n/{BUCKET}/{key}?x-oss-process=other"
    forged = replace_headers(by_oss2, authorization=f"OSS {AK}:{oss_v1.sign(SK, text)}")
    error = rejects(forged, "SignatureDoesNotMatch", now=now)
    assert error.details["StringToSign"].endswith("?x-oss-process=image/resize,w_100")


@pytest.mark.parametrize(
    ("make", "version", "where"),
    [
        (oss2_bucket, "v1", "x-oss-security-token"),
        (oss2_bucket, "v4", "x-oss-security-token"),
        (oss2_bucket, "v2", "x-oss-security-token"),
        (v2_client, "v1", "security-token"),
        (v2_client, "v4", "x-oss-security-token"),
    ],
)
def test_sts_token_from_headers(make: Callable[..., Any], version: str, where: str) -> None:
    capture = Capture()
    client = make(version, capture, "sts-token/+=")
    call = OSS2_CALLS if make is oss2_bucket else V2_CALLS
    request = captured(capture, lambda: call["put-with-metadata"](client, "k.txt"))
    assert request.headers[where] == "sts-token/+="
    assert authenticate(request, KEYS, time.time()) == Authenticated(KEY, version, "sts-token/+=")


# ---------------------------------------------------------------------------------------
# Tampering with SDK-signed requests


@pytest.fixture(params=["oss2-v1", "oss2-v4", "oss2-v2", "v2sdk-v1", "v2sdk-v4"])
def signed_put(request: pytest.FixtureRequest) -> SignedRequest:
    """A PUT with metadata and Content-Type, signed by one of the five signers."""
    sdk, version = request.param.split("-")
    capture = Capture()
    if sdk == "oss2":
        bucket = oss2_bucket(version, capture)
        return captured(capture, lambda: OSS2_CALLS["put-with-metadata"](bucket, "dir/a b.txt"))
    client = v2_client(version, capture)
    return captured(capture, lambda: V2_CALLS["put-with-metadata"](client, "dir/a b.txt"))


def test_tampered_metadata_is_refused(signed_put: SignedRequest) -> None:
    tampered = replace_headers(signed_put, x_oss_meta_author="mallory")
    error = rejects(tampered, "SignatureDoesNotMatch", now=time.time())
    assert "x-oss-meta-author:mallory" in error.details["StringToSign"] + error.details.get(
        "CanonicalRequest", ""
    )


def test_tampered_content_type_is_refused(signed_put: SignedRequest) -> None:
    rejects(
        replace_headers(signed_put, content_type="text/html"),
        "SignatureDoesNotMatch",
        now=time.time(),
    )


def test_other_key_is_refused(signed_put: SignedRequest) -> None:
    rejects(replace_key(signed_put, "dir/a b.txt2"), "SignatureDoesNotMatch", now=time.time())


def test_wrong_secret_is_refused(signed_put: SignedRequest) -> None:
    keys = KeyRing([AccessKey(AK, "not-the-secret", "1234567890")])
    rejects(signed_put, "SignatureDoesNotMatch", now=time.time(), keys=keys)


def test_unknown_key_id_is_refused(signed_put: SignedRequest) -> None:
    rejects(signed_put, "InvalidAccessKeyId", now=time.time(), keys=KeyRing([]))


@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60])
def test_skewed_clock_is_refused(signed_put: SignedRequest, offset: int) -> None:
    error = rejects(signed_put, "RequestTimeTooSkewed", now=time.time() + offset)
    assert set(error.details) == {"RequestTime", "ServerTime"}
    # Within 15 minutes either way is fine.
    assert authenticate(signed_put, KEYS, time.time() + offset * 14 // 16).key == KEY


def test_mismatch_details(signed_put: SignedRequest) -> None:
    keys = KeyRing([AccessKey(AK, "other", "1")])
    error = rejects(signed_put, "SignatureDoesNotMatch", now=time.time(), keys=keys)
    text = error.details["StringToSign"]
    assert error.details["OSSAccessKeyId"] == AK
    assert error.details["SignatureProvided"]
    assert error.details["StringToSignBytes"] == " ".join(f"{b:02X}" for b in text.encode())
    v4 = signed_put.headers["authorization"].startswith("OSS4-HMAC-SHA256")
    assert ("CanonicalRequest" in error.details) == v4
    if v4:
        assert error.details["CanonicalRequest"].startswith("PUT\n/examplebucket/dir/a%20b.txt\n")


# ---------------------------------------------------------------------------------------
# Presigned URLs from both SDKs


def oss2_presigned(
    version: str, method: str, key: str, *, token: str | None = None, **kwargs: Any
) -> SignedRequest:
    """Decode an oss2 `sign_url` URL, sent with the headers it was signed with."""
    bucket = oss2_bucket(version, Capture(), token)
    url = bucket.sign_url(method, key, 300, **kwargs)
    return decode(method, url, kwargs.get("headers") or {})


def v2_presigned(version: str, request: Any, *, token: str | None = None) -> SignedRequest:
    """Decode a v2 SDK `presign` URL, sent with the headers it reports as signed."""
    result = v2_client(version, Capture(), token).presign(
        request, expires=datetime.timedelta(seconds=300)
    )
    return decode(result.method, result.url, result.signed_headers or {})


PRESIGNED_SCHEMES = {"v1": "v1-presigned", "v4": "v4-presigned", "v2": "v2-presigned"}


@pytest.mark.parametrize("key", AWKWARD_KEYS)
@pytest.mark.parametrize("version", ["v1", "v4", "v2"])
def test_oss2_presigned_urls(version: str, key: str) -> None:
    params = {"response-content-type": "text/plain; a=b", "versionId": "CAEQ+x/=", "x": ""}
    get = oss2_presigned(version, "GET", key, params=params)
    put = oss2_presigned(
        version, "PUT", key, headers={"Content-Type": "image/png", "x-oss-meta-a": "b c"}
    )
    now = time.time()
    for request in (get, put):
        assert authenticate(request, KEYS, now) == Authenticated(KEY, PRESIGNED_SCHEMES[version])
        rejects(request, "AccessDenied", now=now + 301)
        rejects(replace_key(request, key + "x"), "SignatureDoesNotMatch", now=now)
    # A presigned PUT must be sent with the Content-Type it was signed with.
    rejects(replace_headers(put, content_type="text/html"), "SignatureDoesNotMatch", now=now)


@pytest.mark.parametrize("key", V2_SDK_KEYS)
@pytest.mark.parametrize("version", ["v1", "v4"])
def test_v2_sdk_presigned_urls(version: str, key: str) -> None:
    get = v2_presigned(
        version,
        ossv2.GetObjectRequest(
            bucket=BUCKET,
            key=key,
            version_id="CAEQ+x/=",
            response_content_type="a b",
            process="image/resize,w_100",
        ),
    )
    put = v2_presigned(
        version,
        ossv2.PutObjectRequest(
            bucket=BUCKET, key=key, content_type="image/png", metadata={"a": "b c"}
        ),
    )
    parts = v2_presigned(
        version,
        ossv2.UploadPartRequest(bucket=BUCKET, key=key, upload_id="0004B98", part_number=2),
    )
    now = time.time()
    for request in (get, put, parts):
        assert authenticate(request, KEYS, now) == Authenticated(KEY, PRESIGNED_SCHEMES[version])
        rejects(request, "AccessDenied", now=now + 301)
    rejects(replace_headers(put, x_oss_meta_a="changed"), "SignatureDoesNotMatch", now=now)


@pytest.mark.parametrize("version", ["v1", "v4", "v2"])
def test_oss2_presigned_sts_token(version: str) -> None:
    request = oss2_presigned(version, "GET", "k", token="tok+/=")
    where = "x-oss-security-token" if version == "v4" else "security-token"
    assert (where, "tok+/=") in request.query
    assert authenticate(request, KEYS, time.time()).security_token == "tok+/="


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_v2_sdk_presigned_sts_token(version: str) -> None:
    request = v2_presigned(version, ossv2.GetObjectRequest(bucket=BUCKET, key="k"), token="t+/")
    assert authenticate(request, KEYS, time.time()).security_token == "t+/"


@pytest.mark.parametrize("version", ["v4", "v2"])
def test_oss2_presigned_with_additional_headers(version: str) -> None:
    request = oss2_presigned(
        version, "GET", "k", headers={"Range": "bytes=0-9"}, additional_headers=["range"]
    )
    assert ("x-oss-additional-headers", "range") in request.query
    now = time.time()
    assert authenticate(request, KEYS, now).scheme == PRESIGNED_SCHEMES[version]
    rejects(replace_headers(request, range="bytes=0-99"), "SignatureDoesNotMatch", now=now)


def test_v4_header_additional_headers_from_both_sdks() -> None:
    """oss2 lists AdditionalHeaders after the signature, with spaces; the v2 signer
    (when asked) before it, without. Both sign the named headers."""
    capture = Capture()
    bucket = oss2_bucket("v4", capture)
    request = oss2.http.Request(
        "GET",
        f"{ENDPOINT}/{BUCKET}/k",
        headers={"Range": "bytes=0-9", "Host": "h.example"},
        region=REGION,
        product="oss",
    )
    bucket.auth._sign_request(request, BUCKET, "k", in_additional_headers=["range", "host"])
    assert ", AdditionalHeaders=" in request.headers["authorization"]
    by_oss2 = decode("GET", request.url, request.headers)

    http_request = HttpRequest("GET", f"{ENDPOINT}/{BUCKET}/k", headers={"Range": "bytes=0-9"})
    context = SigningContext(
        product="oss",
        region=REGION,
        bucket=BUCKET,
        key="k",
        request=http_request,
        credentials=ossv2.credentials.Credentials(AK, SK),
        additional_headers={"range"},
    )
    SignerV4().sign(context)
    assert ",AdditionalHeaders=range,Signature=" in http_request.headers["Authorization"]
    by_v2 = decode("GET", http_request.url, http_request.headers)

    now = time.time()
    for signed in (by_oss2, by_v2):
        assert authenticate(signed, KEYS, now).scheme == "v4"
        rejects(replace_headers(signed, range="bytes=1-9"), "SignatureDoesNotMatch", now=now)


# ---------------------------------------------------------------------------------------
# Property test: random keys, query parameters and metadata through all five signers

KEY_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(" +/%?#&=;:@$!'()*,~._-"),
        st.characters(blacklist_categories=("Cs", "Cc")),
    ),
    min_size=1,
    max_size=30,
).filter(lambda key: key[0] not in "/\\?" and key.strip() != "" and not has_dot_segment(key))
VALUE_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(" +/%?#&=;"), st.characters(blacklist_categories=("Cs", "Cc"))
    ),
    max_size=20,
)
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=KEY_TEXT, version_id=VALUE_TEXT, content_type=VALUE_TEXT, meta=HEADER_TEXT)
def test_any_key_and_parameters_from_every_signer(
    key: str, version_id: str, content_type: str, meta: str
) -> None:
    capture = Capture()
    now = time.time()
    params = {"versionId": version_id, "response-content-type": content_type}
    headers = {"x-oss-meta-m": meta, "Content-Type": "text/plain"}
    for version in ("v1", "v4", "v2"):
        bucket = oss2_bucket(version, capture)
        for call in (
            functools.partial(bucket.get_object, key, params=params),
            functools.partial(bucket.put_object, key, b"x", headers=headers),
        ):
            request = captured(capture, call)
            assert authenticate(request, KEYS, now).scheme == version
            # Any change of the key must break the signature.
            rejects(replace_key(request, key + "_"), "SignatureDoesNotMatch", now=now)
        url = decode("GET", bucket.sign_url("GET", key, 60, params=dict(params)), {})
        assert authenticate(url, KEYS, now).scheme == PRESIGNED_SCHEMES[version]
    for version in ("v1", "v4"):
        client = v2_client(version, capture)
        get = ossv2.GetObjectRequest(
            bucket=BUCKET, key=key, version_id=version_id, response_content_type=content_type
        )
        put = ossv2.PutObjectRequest(bucket=BUCKET, key=key, body=b"x", metadata={"m": meta})
        for call in (
            functools.partial(client.get_object, get),
            functools.partial(client.put_object, put),
        ):
            request = captured(capture, call)
            assert authenticate(request, KEYS, now).scheme == version
            rejects(replace_key(request, key + "_"), "SignatureDoesNotMatch", now=now)
        url = v2_presigned(version, get)
        assert authenticate(url, KEYS, now).scheme == PRESIGNED_SCHEMES[version]


# ---------------------------------------------------------------------------------------
# Scheme detection and malformed signing material


def v4_header_request(authorization: str, **headers: str) -> SignedRequest:
    """The spec's V4 service-level request with another Authorization header."""
    base = {"x-oss-date": VECTOR_STAMP, "x-oss-content-sha256": "UNSIGNED-PAYLOAD"}
    base.update({name.replace("_", "-"): value for name, value in headers.items()})
    base["authorization"] = authorization
    return SignedRequest("GET", None, None, [], base)


VECTOR_SERVICE_SIGNATURE = "1a695f2ae2e4a55b7f5267ec4884e68aa72e9e86517407617d678753c87c7457"


@pytest.mark.parametrize(
    "authorization",
    [
        f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},Signature={VECTOR_SERVICE_SIGNATURE}",
        f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL}, Signature={VECTOR_SERVICE_SIGNATURE}",
        f"OSS4-HMAC-SHA256 Signature={VECTOR_SERVICE_SIGNATURE},Credential={VECTOR_CREDENTIAL}",
        f"OSS4-HMAC-SHA256  Credential={VECTOR_CREDENTIAL} , Signature={VECTOR_SERVICE_SIGNATURE}",
    ],
)
def test_v4_authorization_layouts(authorization: str) -> None:
    assert authenticate(v4_header_request(authorization), KEYS, VECTOR_NOW).scheme == "v4"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL}", "InvalidArgument"),
        (f"OSS4-HMAC-SHA256 Signature={VECTOR_SERVICE_SIGNATURE}", "InvalidArgument"),
        (
            f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},AdditionalHeaders=,"
            f"Signature={VECTOR_SERVICE_SIGNATURE}",
            "InvalidArgument",
        ),
        (
            f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},AdditionalHeaders=host;;range,"
            f"Signature={VECTOR_SERVICE_SIGNATURE}",
            "InvalidArgument",
        ),
        (
            f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},Signature=a,Signature=b",
            "InvalidArgument",
        ),
        (
            f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},Bogus=1,"
            f"Signature={VECTOR_SERVICE_SIGNATURE}",
            "InvalidArgument",
        ),
        (
            f"OSS4-HMAC-SHA256 Credential={AK}/20221117/{REGION}/oss,Signature=ab",
            "InvalidArgument",
        ),
        (
            f"OSS4-HMAC-SHA256 Credential={AK}/20221117/{REGION}/s3/aliyun_v4_request,Signature=ab",
            "InvalidArgument",
        ),
        # The scope date must be the day of x-oss-date.
        (
            f"OSS4-HMAC-SHA256 Credential={AK}/20221116/{REGION}/oss/aliyun_v4_request,"
            f"Signature={VECTOR_SERVICE_SIGNATURE}",
            "AccessDenied",
        ),
        (f"OSS {AK}", "InvalidArgument"),
        (f"OSS :{VECTOR_SERVICE_SIGNATURE}", "InvalidArgument"),
        (f"OSS2 AccessKeyId:{AK}", "InvalidArgument"),
        (f"OSS2 AccessKeyId={AK},Signature=x", "InvalidArgument"),
        ("AWS4-HMAC-SHA256 Credential=x", "InvalidArgument"),
        ("", "InvalidArgument"),
    ],
)
def test_malformed_authorization(authorization: str, code: str) -> None:
    request = v4_header_request(authorization, date=VECTOR_DATE)
    rejects(request, code, now=VECTOR_NOW)


def test_v4_region_comes_from_the_credential() -> None:
    """Any region is accepted, and it is the credential's region that is signed."""
    request = v4_header_request("placeholder")
    for region in ("cn-shanghai", "us-east-1", "local"):
        credential = f"{AK}/20221117/{region}/oss/aliyun_v4_request"
        canonical = oss_v4.canonical_request(request, [])
        text = oss_v4.string_to_sign(VECTOR_STAMP, credential.partition("/")[2], canonical)
        signature = oss_v4.sign(oss_v4.signing_key(SK, "20221117", region), text)
        signed = replace_headers(
            request,
            authorization=f"OSS4-HMAC-SHA256 Credential={credential},Signature={signature}",
        )
        assert authenticate(signed, KEYS, VECTOR_NOW).scheme == "v4"
        other = credential.replace(region, "cn-hangzhou")
        forged = replace_headers(
            request, authorization=f"OSS4-HMAC-SHA256 Credential={other},Signature={signature}"
        )
        rejects(forged, "SignatureDoesNotMatch", now=VECTOR_NOW)


def test_v4_needs_x_oss_date() -> None:
    authorization = (
        f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},Signature={VECTOR_SERVICE_SIGNATURE}"
    )
    request = SignedRequest(
        "GET", None, None, [], {"date": VECTOR_DATE, "authorization": authorization}
    )
    error = rejects(request, "AccessDenied", now=VECTOR_NOW)
    assert "x-oss-date" in error.message
    bad_date = v4_header_request(authorization, x_oss_date="2022-11-17T03:04:05Z")
    assert "x-oss-date" in rejects(bad_date, "AccessDenied", now=VECTOR_NOW).message


def test_v4_content_sha256_is_signed() -> None:
    authorization = (
        f"OSS4-HMAC-SHA256 Credential={VECTOR_CREDENTIAL},Signature={VECTOR_SERVICE_SIGNATURE}"
    )
    request = v4_header_request(authorization, x_oss_content_sha256="0" * 64)
    error = rejects(request, "SignatureDoesNotMatch", now=VECTOR_NOW)
    assert error.details["CanonicalRequest"].endswith("\n" + "0" * 64)


def test_v1_needs_a_readable_date() -> None:
    authorization = f"OSS {AK}:CElCFIsuVtVhDsXeOYPrmygN4co="
    missing = SignedRequest("GET", BUCKET, None, [("acl", "")], {"authorization": authorization})
    assert "Date" in rejects(missing, "AccessDenied", now=VECTOR_NOW).message
    garbled = replace_headers(missing, date="yesterday")
    rejects(garbled, "AccessDenied", now=VECTOR_NOW)


def test_v1_x_oss_date_is_the_date_value() -> None:
    """With x-oss-date present, it replaces Date in the StringToSign, in either format."""
    for stamp, now in ((VECTOR_STAMP, VECTOR_NOW), ("Fri, 18 Nov 2022 00:00:00 GMT", 1668729600.0)):
        headers = {"date": VECTOR_DATE, "x-oss-date": stamp}
        text = oss_v1.string_to_sign("GET", headers, stamp, f"/{BUCKET}/k")
        headers["authorization"] = f"OSS {AK}:{oss_v1.sign(SK, text)}"
        request = SignedRequest("GET", BUCKET, "k", [], headers)
        assert authenticate(request, KEYS, now).scheme == "v1"
        # The skew check reads x-oss-date too.
        rejects(request, "RequestTimeTooSkewed", now=now + 3600)


def test_header_and_query_signatures_cannot_be_combined() -> None:
    headers = {"date": VECTOR_DATE, "authorization": f"OSS {AK}:CElCFIsuVtVhDsXeOYPrmygN4co="}
    for query in (
        [("acl", ""), ("OSSAccessKeyId", AK), ("Expires", "1"), ("Signature", "x")],
        [("acl", ""), ("x-oss-signature-version", "OSS4-HMAC-SHA256")],
    ):
        rejects(
            SignedRequest("GET", BUCKET, None, query, headers), "InvalidArgument", now=VECTOR_NOW
        )
    both = [("OSSAccessKeyId", AK), ("Signature", "x"), ("x-oss-signature-version", "OSS2")]
    rejects(SignedRequest("GET", BUCKET, "k", both, {}), "InvalidArgument", now=VECTOR_NOW)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ([("OSSAccessKeyId", AK), ("Signature", "x")], "AccessDenied"),
        ([("OSSAccessKeyId", AK), ("Expires", "soon"), ("Signature", "x")], "InvalidArgument"),
        (
            [("OSSAccessKeyId", AK), ("Expires", "1"), ("Expires", "2"), ("Signature", "x")],
            "InvalidArgument",
        ),
        ([("x-oss-signature", "x"), ("x-oss-credential", VECTOR_CREDENTIAL)], "AccessDenied"),
        ([("x-oss-signature-version", "OSS3")], "InvalidArgument"),
        ([("x-oss-signature-version", "OSS4-HMAC-SHA256")], "AccessDenied"),
        ([("x-oss-signature-version", "OSS2")], "AccessDenied"),
    ],
)
def test_malformed_presigned_parameters(query: list[tuple[str, str]], code: str) -> None:
    rejects(SignedRequest("GET", BUCKET, "k", query, {}), code, now=VECTOR_NOW)


@pytest.mark.parametrize("expires", ["0", "604801", "-5", "1h"])
def test_v4_presigned_expires_range(expires: str) -> None:
    url = V4_PRESIGNED_URL.replace("x-oss-expires=3600", f"x-oss-expires={expires}")
    rejects(decode("GET", url, {}), "InvalidArgument", now=VECTOR_NOW)


def test_v4_presigned_tampered_query_is_refused() -> None:
    url = V4_PRESIGNED_URL + "&versionId=extra"
    error = rejects(decode("GET", url, {}), "SignatureDoesNotMatch", now=VECTOR_NOW)
    assert "versionId=extra" in error.details["CanonicalRequest"]


def test_anonymous_request() -> None:
    request = SignedRequest("GET", BUCKET, "k", [("versionId", "1")], {"date": VECTOR_DATE})
    assert authenticate(request, KEYS, VECTOR_NOW) == Authenticated(None, "anonymous")


def test_v2_canonical_resource_encodes_slashes() -> None:
    resource = oss_v2.canonical_resource(BUCKET, "dir/a b.txt", [("b", "x/y"), ("a", "")])
    assert resource == "%2Fexamplebucket%2Fdir%2Fa%20b.txt?a&b=x%2Fy"
    assert oss_v2.canonical_resource(None, None, []) == "%2F"
    assert oss_v2.canonical_resource(BUCKET, None, []) == "%2Fexamplebucket%2F"


def test_v1_subresources_sorted_and_decoded() -> None:
    query = [("uploadId", "a+b/c"), ("partNumber", "3"), ("prefix", "ignored"), ("acl", "")]
    assert oss_v1.canonical_resource(BUCKET, "k é", query) == (
        "/examplebucket/k é?acl&partNumber=3&uploadId=a+b/c"
    )
    assert oss_v1.canonical_resource(None, None, [("x-oss-process", "p")]) == "/?x-oss-process=p"
    reduced = oss_v1.canonical_resource(
        BUCKET, "k", [("x-oss-process", "p")], oss_v1.SUBRESOURCES_REDUCED
    )
    assert reduced == "/examplebucket/k"
