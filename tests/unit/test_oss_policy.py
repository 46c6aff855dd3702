"""PostObject form signatures and policy conditions (spec 4.8, 7.9).

Neither SDK implements PostObject, so the forms are built by hand from the spec text:
V1 signatures with `hmac` directly, V4 signatures with the v2 SDK's own V4 signing
routine (an implementation independent of `tidings.auth.oss_v4`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import pytest
from alibabacloud_oss_v2.signer import SignerV4

from tidings.auth.keys import AccessKey, KeyRing
from tidings.auth.oss import Authenticated
from tidings.auth.oss_policy import PostPolicy, authenticate_post, check_conditions
from tidings.errors import ServiceError

AK, SK = "AKIDEXAMPLE", "SECRETEXAMPLEKEY"
KEY = AccessKey(AK, SK, "1234567890")
KEYS = KeyRing([KEY])
BUCKET = "examplebucket"
NOW = 1668654245.0  # 2022-11-17T03:04:05Z
STAMP = "20221117T030405Z"
EXPIRATION = "2022-11-17T04:04:05.000Z"  # NOW + 1 h
CREDENTIAL = f"{AK}/20221117/cn-hangzhou/oss/aliyun_v4_request"
V4_PINS: list[object] = [
    {"x-oss-signature-version": "OSS4-HMAC-SHA256"},
    {"x-oss-credential": CREDENTIAL},
    ["eq", "$x-oss-date", STAMP],
]
FAILED = "Invalid according to Policy: Policy Condition failed: "


def encode_policy(conditions: list[object], expiration: str = EXPIRATION) -> str:
    """The policy form field: base64 of the JSON document."""
    document = {"expiration": expiration, "conditions": conditions}
    return base64.b64encode(json.dumps(document).encode()).decode()


def v1_form(policy: str, secret: str = SK, **extra: str) -> dict[str, str]:
    """A V1-signed form (lower-cased field names, as the API layer hands them over)."""
    digest = hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()
    form = {
        "key": "uploads/cat.jpg",
        "ossaccesskeyid": AK,
        "policy": policy,
        "signature": base64.b64encode(digest).decode(),
    }
    form.update(extra)
    return form


def v4_form(
    policy: str,
    secret: str = SK,
    credential: str = CREDENTIAL,
    stamp: str = STAMP,
) -> dict[str, str]:
    """A V4-signed form; the signature comes from the v2 SDK's V4 signer."""
    _, date, region, product, _ = credential.split("/")
    signature = SignerV4()._calc_signature(secret, date, region, product, policy)
    return {
        "key": "uploads/cat.jpg",
        "x-oss-signature-version": "OSS4-HMAC-SHA256",
        "x-oss-credential": credential,
        "x-oss-date": stamp,
        "policy": policy,
        "x-oss-signature": signature,
    }


def refused(code: str, fields: dict[str, str], now: float = NOW) -> ServiceError:
    """authenticate_post must raise `code`."""
    with pytest.raises(ServiceError) as caught:
        authenticate_post(fields, BUCKET, KEYS, now)
    assert caught.value.code == code, caught.value.message
    return caught.value


# ---------------------------------------------------------------------------------------
# authenticate_post


def test_no_signature_fields_is_anonymous() -> None:
    assert authenticate_post({}, BUCKET, KEYS, NOW) == (Authenticated(None, "anonymous"), None)
    form = {"key": "a.txt", "success_action_status": "201"}
    assert authenticate_post(form, BUCKET, KEYS, NOW) == (Authenticated(None, "anonymous"), None)


def test_anonymous_policy_is_still_decoded_and_checked() -> None:
    policy = encode_policy([["starts-with", "$key", "public/"]])
    auth, decoded = authenticate_post({"policy": policy}, BUCKET, KEYS, NOW)
    assert auth == Authenticated(None, "anonymous")
    assert decoded is not None and decoded.conditions == [["starts-with", "$key", "public/"]]
    refused("AccessDenied", {"policy": policy}, now=NOW + 3601)


def test_v1_form() -> None:
    conditions: list[object] = [{"bucket": BUCKET}, ["content-length-range", 1, 10]]
    auth, policy = authenticate_post(v1_form(encode_policy(conditions)), BUCKET, KEYS, NOW)
    assert auth == Authenticated(KEY, "post-v1")
    assert policy == PostPolicy(NOW + 3600, conditions)


def test_v1_form_with_sts_token() -> None:
    form = v1_form(encode_policy([]), **{"x-oss-security-token": "tok"})
    auth, _ = authenticate_post(form, BUCKET, KEYS, NOW)
    assert auth == Authenticated(KEY, "post-v1", "tok")


def test_v1_policy_with_line_breaks_is_signed_as_sent() -> None:
    """Some encoders wrap base64 at 76 columns; the signature covers the field verbatim."""
    policy = base64.encodebytes(
        json.dumps({"expiration": EXPIRATION, "conditions": [{"bucket": BUCKET}] * 5}).encode()
    ).decode()
    assert "\n" in policy
    assert authenticate_post(v1_form(policy), BUCKET, KEYS, NOW)[0].scheme == "post-v1"


def test_v1_wrong_signature() -> None:
    policy = encode_policy([])
    error = refused("SignatureDoesNotMatch", v1_form(policy, secret="other"))
    assert error.details["StringToSign"] == policy
    assert error.details["OSSAccessKeyId"] == AK
    tampered = v1_form(policy)
    tampered["policy"] = encode_policy([], expiration="2030-01-01T00:00:00.000Z")
    refused("SignatureDoesNotMatch", tampered)


def test_v1_unknown_key() -> None:
    form = v1_form(encode_policy([]))
    form["ossaccesskeyid"] = "nobody"
    refused("InvalidAccessKeyId", form)


def test_v1_missing_pieces() -> None:
    form = v1_form(encode_policy([]))
    del form["ossaccesskeyid"]
    refused("InvalidArgument", form)
    form = v1_form(encode_policy([]))
    del form["signature"]
    refused("InvalidArgument", form)


@pytest.mark.parametrize("make", [v1_form, v4_form])
def test_expired_policy(make: Callable[[str], dict[str, str]]) -> None:
    form = make(encode_policy(V4_PINS, expiration="2022-11-17T03:04:04.000Z"))
    error = refused("AccessDenied", form)
    assert error.message == "Invalid according to Policy: Policy expired."
    # Expiration without a fraction or with an offset is read too.
    for expiration in ("2022-11-17T03:04:06Z", "2022-11-17T11:04:06+08:00"):
        authenticate_post(make(encode_policy(V4_PINS, expiration=expiration)), BUCKET, KEYS, NOW)


@pytest.mark.parametrize("make", [v1_form, v4_form])
def test_signature_without_policy(make: Callable[[str], dict[str, str]]) -> None:
    form = make(encode_policy(V4_PINS))
    del form["policy"]
    refused("InvalidPolicyDocument", form)


@pytest.mark.parametrize(
    "policy",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'{"conditions": []}').decode(),
        base64.b64encode(b'{"expiration": "tomorrow", "conditions": []}').decode(),
        base64.b64encode(b'{"expiration": "2022-11-17T04:04:05.000Z"}').decode(),
        encode_policy([["eq", "$key"]]),
        encode_policy([["equals", "$key", "a"]]),
        encode_policy([["eq", 5, "a"]]),
        encode_policy([["in", "$key", "a"]]),
        encode_policy([["eq", "$key", ["a"]]]),
        encode_policy([["content-length-range", 10, 1]]),
        encode_policy([["content-length-range", -1, 1]]),
        encode_policy([["content-length-range", "a", 1]]),
        encode_policy([{"key": True}]),
        encode_policy([{}]),
        encode_policy(["key"]),
    ],
)
def test_invalid_policy_documents(policy: str) -> None:
    refused("InvalidPolicyDocument", v1_form(policy))


def test_v4_form() -> None:
    auth, policy = authenticate_post(v4_form(encode_policy(V4_PINS)), BUCKET, KEYS, NOW)
    assert auth == Authenticated(KEY, "post-v4")
    assert policy is not None and policy.conditions == V4_PINS


def test_v4_form_any_region() -> None:
    credential = f"{AK}/20221117/local-dev/oss/aliyun_v4_request"
    pins: list[object] = [*V4_PINS[::2], {"x-oss-credential": credential}]
    form = v4_form(encode_policy(pins), credential=credential)
    assert authenticate_post(form, BUCKET, KEYS, NOW)[0].scheme == "post-v4"


def test_v4_wrong_signature() -> None:
    policy = encode_policy(V4_PINS)
    error = refused("SignatureDoesNotMatch", v4_form(policy, secret="other"))
    assert error.details["StringToSign"] == policy


@pytest.mark.parametrize("missing", [0, 1, 2])
def test_v4_policy_must_pin_the_signing_fields(missing: int) -> None:
    pins = [pin for index, pin in enumerate(V4_PINS) if index != missing]
    error = refused("AccessDenied", v4_form(encode_policy(pins)))
    assert error.message.startswith("Invalid according to Policy: ")


def test_v4_pinned_values_must_match_the_form() -> None:
    pins: list[object] = [*V4_PINS[:2], ["eq", "$x-oss-date", "20221117T000000Z"]]
    error = refused("AccessDenied", v4_form(encode_policy(pins)))
    assert error.message == FAILED + '["eq", "$x-oss-date", "20221117T000000Z"]'


def test_v4_scope_date_must_match_x_oss_date() -> None:
    credential = f"{AK}/20221116/cn-hangzhou/oss/aliyun_v4_request"
    pins: list[object] = [V4_PINS[0], {"x-oss-credential": credential}, V4_PINS[2]]
    refused("AccessDenied", v4_form(encode_policy(pins), credential=credential))


def test_v4_date_window() -> None:
    form = v4_form(encode_policy(V4_PINS, expiration="2030-01-01T00:00:00Z"))
    assert authenticate_post(form, BUCKET, KEYS, NOW - 900)[0].scheme == "post-v4"
    refused("AccessDenied", form, now=NOW - 901)
    assert authenticate_post(form, BUCKET, KEYS, NOW + 7 * 86400)[0].scheme == "post-v4"
    refused("AccessDenied", form, now=NOW + 7 * 86400 + 1)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("x-oss-signature-version", "OSS2", "InvalidArgument"),
        ("x-oss-date", "", "InvalidArgument"),
        ("x-oss-date", "2022-11-17T03:04:05Z", "AccessDenied"),
        ("x-oss-credential", "AKIDEXAMPLE/20221117", "InvalidArgument"),
        ("x-oss-signature", "", "InvalidArgument"),
    ],
)
def test_v4_malformed_fields(field: str, value: str, code: str) -> None:
    form = v4_form(encode_policy(V4_PINS))
    form[field] = value
    refused(code, form)


def test_v1_and_v4_fields_together() -> None:
    form = {**v4_form(encode_policy(V4_PINS)), "signature": "x", "ossaccesskeyid": AK}
    refused("InvalidArgument", form)


# ---------------------------------------------------------------------------------------
# check_conditions


def condition_error(condition: object, fields: dict[str, str], size: int = 5) -> ServiceError:
    """check_conditions must refuse the form under a policy of this one condition."""
    with pytest.raises(ServiceError) as caught:
        check_conditions(PostPolicy(NOW + 60, [condition]), fields, BUCKET, size)
    return caught.value


def passes(condition: object, fields: dict[str, str], size: int = 5) -> None:
    """check_conditions must accept the form under a policy of this one condition."""
    check_conditions(PostPolicy(NOW + 60, [condition]), fields, BUCKET, size)


def test_spec_example_policy() -> None:
    conditions: list[object] = [
        {"bucket": "examplebucket"},
        ["starts-with", "$key", "uploads/"],
        ["content-length-range", 1, 10485760],
        ["eq", "$success_action_status", "201"],
        ["in", "$content-type", ["image/jpg", "image/png"]],
        ["not-in", "$cache-control", ["no-cache"]],
    ]
    fields = {
        "key": "uploads/cat.jpg",
        "success_action_status": "201",
        "content-type": "image/png",
        "cache-control": "max-age=60",
    }
    check_conditions(PostPolicy(NOW + 60, conditions), fields, BUCKET, 48213)
    error = condition_error(conditions[3], {**fields, "success_action_status": "204"})
    assert error.code == "AccessDenied"
    assert error.message == FAILED + '["eq", "$success_action_status", "201"]'


def test_exact_condition() -> None:
    passes({"bucket": BUCKET}, {})
    error = condition_error({"bucket": "otherbucket"}, {"bucket": "otherbucket"})
    assert error.message == FAILED + '{"bucket": "otherbucket"}'
    passes({"x-oss-meta-color": "red"}, {"x-oss-meta-color": "red"})
    assert condition_error({"key": "a"}, {}).code == "AccessDenied"
    # A number in the policy compares with its decimal text.
    passes({"success_action_status": 201}, {"success_action_status": "201"})


def test_eq_condition() -> None:
    passes(["eq", "$key", "a b"], {"key": "a b"})
    error = condition_error(["eq", "$key", "a b"], {"key": "a+b"})
    assert error.message == FAILED + '["eq", "$key", "a b"]'


def test_starts_with_condition() -> None:
    passes(["starts-with", "$key", "uploads/"], {"key": "uploads/x"})
    error = condition_error(["starts-with", "$key", "uploads/"], {"key": "other/uploads/x"})
    assert error.message == FAILED + '["starts-with", "$key", "uploads/"]'
    # An empty prefix allows anything, even an absent field.
    passes(["starts-with", "$content-type", ""], {"content-type": "x/y"})
    passes(["starts-with", "$content-type", ""], {})


def test_in_and_not_in_conditions() -> None:
    allowed = ["in", "$content-type", ["image/jpg", "image/png"]]
    passes(allowed, {"content-type": "image/png"})
    error = condition_error(allowed, {"content-type": "image/gif"})
    assert error.message == FAILED + '["in", "$content-type", ["image/jpg", "image/png"]]'
    banned = ["not-in", "$cache-control", ["no-cache"]]
    passes(banned, {"cache-control": "max-age=1"})
    passes(banned, {})
    error = condition_error(banned, {"cache-control": "no-cache"})
    assert error.message == FAILED + '["not-in", "$cache-control", ["no-cache"]]'


def test_field_names_are_case_insensitive() -> None:
    passes(["eq", "$Content-Type", "image/png"], {"content-type": "image/png"})
    passes({"X-Oss-Meta-Color": "red"}, {"x-oss-meta-color": "red"})
    passes(["starts-with", "$X-OSS-META-tag", "a"], {"x-oss-meta-tag": "abc"})
    passes(["eq", "$Bucket", BUCKET], {})
    # Values are not.
    assert condition_error(["eq", "$key", "A"], {"key": "a"}).code == "AccessDenied"
    assert condition_error({"x-oss-meta-a": "Red"}, {"x-oss-meta-a": "red"}).code == (
        "AccessDenied"
    )


def test_failure_message_keeps_unicode() -> None:
    error = condition_error(["eq", "$key", "目录/猫.jpg"], {"key": "x"})
    assert error.message == FAILED + '["eq", "$key", "目录/猫.jpg"]'


def test_content_length_range() -> None:
    for size in (1, 5, 10):
        passes(["content-length-range", 1, 10], {}, size)
    small = condition_error(["content-length-range", 1, 10], {}, 0)
    assert small.code == "EntityTooSmall"
    assert small.details == {"ProposedSize": "0", "MinSizeAllowed": "1"}
    large = condition_error(["content-length-range", 1, 10], {}, 11)
    assert large.code == "EntityTooLarge"
    assert large.details == {"ProposedSize": "11", "MaxSizeAllowed": "10"}
    # Bounds given as strings are read as numbers.
    passes(["content-length-range", "0", "10"], {}, 0)


def test_every_condition_is_enforced() -> None:
    conditions: list[object] = [["eq", "$key", "a"], ["eq", "$key", "b"]]
    with pytest.raises(ServiceError) as caught:
        check_conditions(PostPolicy(NOW + 60, conditions), {"key": "a"}, BUCKET, 1)
    assert caught.value.message == FAILED + '["eq", "$key", "b"]'


def test_malformed_condition_in_a_hand_built_policy() -> None:
    error = condition_error(["between", "$key", "a"], {"key": "a"})
    assert error.code == "InvalidPolicyDocument"
