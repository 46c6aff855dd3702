"""MNS signature version 1 (spec section 3) and the query parser the signature relies on.

The worked examples of spec 3.6 are checked byte for byte; `verify()` is driven through
every documented refusal; a property test checks that signing round-trips and that any
single-character change to the signed material breaks the signature. A reference signer
written from the spec text (not from `tidings.auth.mns`) signs the requests, so the
tests do not only compare the module with itself.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.api.http import parse_query
from tidings.auth.keys import AccessKey, KeyRing
from tidings.auth.mns import content_md5_matches, sign, string_to_sign, verify
from tidings.errors import ServiceError

# Spec 3.6: AccessKey, date and requests of the worked example.
EXAMPLE_KEY = AccessKey("testid", "testsecret", "1234567890")
EXAMPLE_DATE = "Thu, 07 Mar 2024 18:49:58 GMT"
EXAMPLE_NOW = 1709837398.0  # the instant EXAMPLE_DATE names
EXAMPLE_GET_RESOURCE = "/queues/TestQueue/messages?waitseconds=10"
EXAMPLE_GET_STRING = (
    "GET\n\n\nThu, 07 Mar 2024 18:49:58 GMT\nx-mns-version:2015-06-06\n"
    "/queues/TestQueue/messages?waitseconds=10"
)
EXAMPLE_GET_SIGNATURE = "EUztxq3TcPdqJabgtQkgw9Hd8mc="
EXAMPLE_POST_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><Message xmlns="http://mns.aliyuncs.com/doc/v1/">'
    b"<MessageBody>aGVsbG8gd29ybGQ=</MessageBody></Message>"
)
EXAMPLE_POST_MD5 = "OGNkNzFiZmRkNGI3ZDk2ZjlhZjcwZDRiYTkwMWJlYTM="
EXAMPLE_POST_STRING = (
    "POST\nOGNkNzFiZmRkNGI3ZDk2ZjlhZjcwZDRiYTkwMWJlYTM=\ntext/xml;charset=UTF-8\n"
    "Thu, 07 Mar 2024 18:49:58 GMT\nx-mns-user-request-id:my-req-1\nx-mns-version:2015-06-06\n"
    "/queues/TestQueue/messages"
)
EXAMPLE_POST_SIGNATURE = "reBGWQBqZ622yAuCoWfs3xBWUKU="

KEYS = KeyRing([EXAMPLE_KEY])


def example_get_headers() -> dict[str, str]:
    """The headers of the worked GET example (lower-case names, as the server sees them)."""
    return {"date": EXAMPLE_DATE, "x-mns-version": "2015-06-06"}


def example_post_headers() -> dict[str, str]:
    """The headers of the worked POST example."""
    return {
        "date": EXAMPLE_DATE,
        "x-mns-version": "2015-06-06",
        "x-mns-user-request-id": "my-req-1",
        "content-md5": EXAMPLE_POST_MD5,
        "content-type": "text/xml;charset=UTF-8",
    }


def reference_signature(secret: str, method: str, headers: Mapping[str, str], resource: str) -> str:
    """Spec 3.2/3.3 written out independently of the module under test."""
    lower = {name.lower(): value for name, value in headers.items()}
    mns_headers = sorted(name for name in lower if name.startswith("x-mns-"))
    text = "\n".join(
        [method, lower.get("content-md5", ""), lower.get("content-type", ""), lower.get("date", "")]
    )
    text += "\n" + "".join(f"{name}:{lower[name]}\n" for name in mns_headers) + resource
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signed(
    headers: Mapping[str, str],
    resource: str,
    method: str = "GET",
    key: AccessKey = EXAMPLE_KEY,
) -> dict[str, str]:
    """`headers` plus an Authorization header made by the reference signer."""
    signature = reference_signature(key.secret, method, headers, resource)
    return {**headers, "authorization": f"MNS {key.key_id}:{signature}"}


def refusal(
    headers: Mapping[str, str],
    resource: str = EXAMPLE_GET_RESOURCE,
    method: str = "GET",
    now: float = EXAMPLE_NOW,
) -> ServiceError:
    """The error verify() raises for this request."""
    with pytest.raises(ServiceError) as caught:
        verify(KEYS, method, headers, resource, now=now)
    return caught.value


def http_date(timestamp: float) -> str:
    """RFC 1123 date in GMT, as the SDK sends it."""
    return email.utils.formatdate(timestamp, usegmt=True)


# -- spec 3.6, byte for byte --------------------------------------------------------------


def test_example_date_is_the_example_instant() -> None:
    assert http_date(EXAMPLE_NOW) == EXAMPLE_DATE


def test_worked_get_example_string_to_sign_and_signature() -> None:
    text = string_to_sign("GET", example_get_headers(), EXAMPLE_GET_RESOURCE)
    assert text.encode("utf-8") == EXAMPLE_GET_STRING.encode("utf-8")
    assert sign("testsecret", text) == EXAMPLE_GET_SIGNATURE
    assert (
        reference_signature("testsecret", "GET", example_get_headers(), EXAMPLE_GET_RESOURCE)
        == EXAMPLE_GET_SIGNATURE
    )


def test_worked_post_example_content_md5_string_to_sign_and_signature() -> None:
    assert len(EXAMPLE_POST_BODY) == 140
    sdk_md5 = base64.b64encode(hashlib.md5(EXAMPLE_POST_BODY).hexdigest().encode()).decode()
    assert sdk_md5 == EXAMPLE_POST_MD5
    text = string_to_sign("POST", example_post_headers(), "/queues/TestQueue/messages")
    assert text.encode("utf-8") == EXAMPLE_POST_STRING.encode("utf-8")
    assert sign("testsecret", text) == EXAMPLE_POST_SIGNATURE


@pytest.mark.parametrize(
    ("method", "headers", "resource", "signature"),
    [
        ("GET", example_get_headers(), EXAMPLE_GET_RESOURCE, EXAMPLE_GET_SIGNATURE),
        ("POST", example_post_headers(), "/queues/TestQueue/messages", EXAMPLE_POST_SIGNATURE),
    ],
    ids=["get", "post"],
)
def test_verify_accepts_the_worked_examples(
    method: str, headers: dict[str, str], resource: str, signature: str
) -> None:
    request = {**headers, "authorization": f"MNS testid:{signature}"}
    assert verify(KEYS, method, request, resource, now=EXAMPLE_NOW) == EXAMPLE_KEY


# -- verify(): every documented refusal ---------------------------------------------------


def test_good_signature_returns_the_signing_key() -> None:
    headers = signed(example_get_headers(), EXAMPLE_GET_RESOURCE)
    assert verify(KEYS, "GET", headers, EXAMPLE_GET_RESOURCE, now=EXAMPLE_NOW) is EXAMPLE_KEY


def test_missing_authorization_header() -> None:
    assert refusal(example_get_headers()).code == "MissingAuthorizationHeader"


@pytest.mark.parametrize(
    "authorization",
    [
        "MNS abc",
        "Bearer x:y",
        "MNS",
        "MNS ",
        "MNS :sig",
        "MNS testid:",
        "mns testid:sig",
        "MNS4-HMAC-SHA256 Credential=testid/20240307/cn-hangzhou/mns/aliyun_v4_request",
        "",
    ],
)
def test_malformed_authorization_header(authorization: str) -> None:
    headers = {**example_get_headers(), "authorization": authorization}
    assert refusal(headers).code == "InvalidAuthorizationHeader"


def test_unknown_access_key_id() -> None:
    stranger = AccessKey("nobody", "testsecret", "1234567890")
    headers = signed(example_get_headers(), EXAMPLE_GET_RESOURCE, key=stranger)
    assert refusal(headers).code == "InvalidAccessKeyId"


def test_wrong_secret_does_not_match() -> None:
    impostor = AccessKey("testid", "not-the-secret", "1234567890")
    headers = signed(example_get_headers(), EXAMPLE_GET_RESOURCE, key=impostor)
    assert refusal(headers).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    ("method", "resource"),
    [
        ("POST", EXAMPLE_GET_RESOURCE),  # verb is signed
        ("GET", "/queues/TestQueue/messages?waitseconds=11"),  # query is signed
        ("GET", "/queues/TestQueue/messages?WaitSeconds=10"),  # case is significant
        ("GET", "/queues/TestQueue/messages"),  # the query cannot be dropped
    ],
)
def test_signature_covers_verb_and_raw_resource(method: str, resource: str) -> None:
    headers = signed(example_get_headers(), EXAMPLE_GET_RESOURCE)
    assert refusal(headers, resource, method).code == "SignatureDoesNotMatch"


def test_signature_covers_content_md5_content_type_and_mns_headers() -> None:
    resource = "/queues/TestQueue/messages"
    headers = signed(example_post_headers(), resource, "POST")
    for name, value in [
        ("content-md5", "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA="),
        ("content-type", "text/plain"),
        ("x-mns-user-request-id", "my-req-2"),
        ("x-mns-extra", "added"),
    ]:
        assert refusal({**headers, name: value}, resource, "POST").code == "SignatureDoesNotMatch"


def test_security_token_is_not_signed() -> None:
    headers = signed(example_get_headers(), EXAMPLE_GET_RESOURCE)
    headers["security-token"] = "sts-token-added-after-signing"
    assert verify(KEYS, "GET", headers, EXAMPLE_GET_RESOURCE, now=EXAMPLE_NOW) == EXAMPLE_KEY


def test_missing_date_header() -> None:
    headers = signed({"x-mns-version": "2015-06-06"}, EXAMPLE_GET_RESOURCE)
    assert refusal(headers).code == "MissingDateHeader"


def test_empty_date_header_counts_as_missing() -> None:
    headers = signed({**example_get_headers(), "date": ""}, EXAMPLE_GET_RESOURCE)
    assert refusal(headers).code == "MissingDateHeader"


@pytest.mark.parametrize(
    "date",
    [
        "yesterday",
        "Thu, 07 Mar 2024",
        "2024-03-07T18:49:58Z",
        "Thu, 07 Foo 2024 18:49:58 GMT",
        "Thu, 07 Mar 2024 18:49:58 -0000",  # RFC 2822's "no time zone"
        "1709837398",
    ],
)
def test_unparsable_date_header(date: str) -> None:
    headers = signed({**example_get_headers(), "date": date}, EXAMPLE_GET_RESOURCE)
    assert refusal(headers).code == "InvalidDateHeader"


def test_date_with_an_absurd_year_is_invalid_not_a_crash() -> None:
    headers = signed(
        {**example_get_headers(), "date": "07 Feb 99999999999999999999 00:00"},
        EXAMPLE_GET_RESOURCE,
    )
    assert refusal(headers).code == "InvalidDateHeader"


@pytest.mark.parametrize("skew_minutes", [16, -16, 60 * 24])
def test_date_too_far_from_server_time(skew_minutes: int) -> None:
    date = http_date(EXAMPLE_NOW + skew_minutes * 60)
    headers = signed({**example_get_headers(), "date": date}, EXAMPLE_GET_RESOURCE)
    assert refusal(headers).code == "TimeExpired"


@pytest.mark.parametrize("skew_seconds", [14 * 60, -14 * 60, 15 * 60, -15 * 60, 0])
def test_date_within_fifteen_minutes_is_accepted(skew_seconds: int) -> None:
    date = http_date(EXAMPLE_NOW + skew_seconds)
    headers = signed({**example_get_headers(), "date": date}, EXAMPLE_GET_RESOURCE)
    assert verify(KEYS, "GET", headers, EXAMPLE_GET_RESOURCE, now=EXAMPLE_NOW) == EXAMPLE_KEY


def test_date_one_second_past_the_limit_is_refused() -> None:
    date = http_date(EXAMPLE_NOW - 15 * 60 - 1)
    headers = signed({**example_get_headers(), "date": date}, EXAMPLE_GET_RESOURCE)
    assert refusal(headers).code == "TimeExpired"


def test_x_mns_date_substitutes_for_date_with_an_empty_date_line() -> None:
    headers = signed(
        {"x-mns-version": "2015-06-06", "x-mns-date": EXAMPLE_DATE}, EXAMPLE_GET_RESOURCE
    )
    assert verify(KEYS, "GET", headers, EXAMPLE_GET_RESOURCE, now=EXAMPLE_NOW) == EXAMPLE_KEY


def test_missing_version_header() -> None:
    headers = signed({"date": EXAMPLE_DATE}, EXAMPLE_GET_RESOURCE)
    assert refusal(headers).code == "MissingVersionHeader"


# -- Content-MD5 --------------------------------------------------------------------------


def test_content_md5_sdk_form() -> None:
    assert content_md5_matches(EXAMPLE_POST_MD5, EXAMPLE_POST_BODY)


def test_content_md5_rfc_1864_form() -> None:
    rfc_form = base64.b64encode(hashlib.md5(EXAMPLE_POST_BODY).digest()).decode()
    assert len(rfc_form) == 24
    assert content_md5_matches(rfc_form, EXAMPLE_POST_BODY)


@pytest.mark.parametrize(
    "value",
    [
        hashlib.md5(EXAMPLE_POST_BODY).hexdigest(),  # hex, not Base64'd
        hashlib.md5(EXAMPLE_POST_BODY).hexdigest().upper(),
        base64.b64encode(hashlib.md5(EXAMPLE_POST_BODY).hexdigest().upper().encode()).decode(),
        base64.b64encode(hashlib.md5(b"another body").hexdigest().encode()).decode(),
        "",
        "not base64 at all",
    ],
)
def test_content_md5_mismatch(value: str) -> None:
    assert not content_md5_matches(value, EXAMPLE_POST_BODY)


def test_content_md5_of_a_different_body_does_not_match() -> None:
    assert not content_md5_matches(EXAMPLE_POST_MD5, EXAMPLE_POST_BODY + b" ")


# -- property: round trip, and every single-character change breaks it ----------------------

_TEXT = st.characters(codec="utf-8")  # no lone surrogates: they cannot be encoded
_MNS_HEADER_NAMES = st.from_regex(r"x-mns-[a-z0-9-]{1,12}", fullmatch=True)
_OTHER_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "content-md5": st.text(_TEXT, max_size=44),
        "content-type": st.text(_TEXT, max_size=30),
        "security-token": st.text(_TEXT, max_size=20),
        "user-agent": st.text(_TEXT, max_size=20),
    },
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str], str]:
    """(method, lower-case headers, resource) with a valid date and x-mns-version."""
    method = draw(st.sampled_from(["GET", "PUT", "POST", "DELETE"]))
    mns = draw(st.dictionaries(_MNS_HEADER_NAMES, st.text(_TEXT, max_size=30), max_size=5))
    headers = {**draw(_OTHER_HEADERS), **mns}
    headers["x-mns-version"] = draw(st.sampled_from(["2015-06-06", ""]))
    headers["date"] = EXAMPLE_DATE
    resource = "/" + draw(st.text(_TEXT, max_size=60))
    return method, headers, resource


def mutate(value: str, data: st.DataObject) -> str:
    """`value` with one character replaced, inserted or deleted."""
    kinds = ["replace", "insert", "delete"] if value else ["insert"]
    kind = data.draw(st.sampled_from(kinds))
    if kind == "insert":
        at = data.draw(st.integers(0, len(value)))
        return value[:at] + data.draw(_TEXT) + value[at:]
    at = data.draw(st.integers(0, len(value) - 1))
    if kind == "delete":
        return value[:at] + value[at + 1 :]
    other = data.draw(_TEXT.filter(lambda c: c != value[at]))
    return value[:at] + other + value[at + 1 :]


@settings(max_examples=300, deadline=None)
@given(request=requests())
def test_property_sign_then_verify_round_trips(request: tuple[str, dict[str, str], str]) -> None:
    method, headers, resource = request
    assert sign(EXAMPLE_KEY.secret, string_to_sign(method, headers, resource)) == (
        reference_signature(EXAMPLE_KEY.secret, method, headers, resource)
    )
    authorized = signed(headers, resource, method)
    assert verify(KEYS, method, authorized, resource, now=EXAMPLE_NOW) == EXAMPLE_KEY


@settings(max_examples=300, deadline=None)
@given(request=requests(), data=st.data())
def test_property_single_character_change_breaks_the_signature(
    request: tuple[str, dict[str, str], str], data: st.DataObject
) -> None:
    method, headers, resource = request
    authorized = signed(headers, resource, method)
    targets = ["resource", *sorted(name for name in headers if name.startswith("x-mns-"))]
    target = data.draw(st.sampled_from(targets))
    if target == "resource":
        resource = mutate(resource, data)
    else:
        authorized[target] = mutate(authorized[target], data)
    assert refusal(authorized, resource, method).code == "SignatureDoesNotMatch"


# -- parse_query --------------------------------------------------------------------------


def test_parse_query_keeps_plus_literal() -> None:
    assert parse_query("ReceiptHandle=1-MTIzNDU2+/a=") == {"receipthandle": "1-MTIzNDU2+/a="}
    assert parse_query("a=x+y") == {"a": "x+y"}


def test_parse_query_decodes_percent_sequences() -> None:
    assert parse_query("a=%2B%2F%3D%20%41") == {"a": "+/= A"}
    assert parse_query("%52eceipt%48andle=x") == {"receipthandle": "x"}


def test_parse_query_lower_cases_names_but_not_values() -> None:
    assert parse_query("VisibilityTimeout=30&ReceiptHandle=AbC") == {
        "visibilitytimeout": "30",
        "receipthandle": "AbC",
    }


def test_parse_query_splits_on_the_first_equals_sign() -> None:
    assert parse_query("ReceiptHandle=MTIz==&x=a=b=c") == {"receipthandle": "MTIz==", "x": "a=b=c"}


def test_parse_query_edge_cases() -> None:
    assert parse_query("") == {}
    assert parse_query("&&") == {}
    assert parse_query("metaoverride") == {"metaoverride": ""}
    assert parse_query("numOfMessages=16&waitseconds=10") == {
        "numofmessages": "16",
        "waitseconds": "10",
    }
