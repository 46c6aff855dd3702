"""PostObject form signatures and policies (spec 4.8, 7.9).

The policy form field is base64 JSON; V1 signs that base64 text with HMAC-SHA1, V4 with
the derived V4 key. `authenticate_post` verifies the signature and the expiration;
`check_conditions` runs once the file size is known.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tidings.auth import oss_v1, oss_v4
from tidings.auth.keys import KeyRing
from tidings.auth.oss import (
    ANONYMOUS,
    MAX_CLOCK_SKEW_SECONDS,
    V4_ALGORITHM,
    Authenticated,
    lookup_key,
    parse_iso_basic,
    same_signature,
    signature_mismatch,
)
from tidings.errors import ServiceError

MAX_V4_POST_AGE_SECONDS = 7 * 24 * 3600
_V1_FIELDS = frozenset({"ossaccesskeyid", "signature"})
_V4_FIELDS = frozenset({"x-oss-signature-version", "x-oss-credential", "x-oss-signature"})
# A V4 policy must pin the fields the signing key is derived from (spec 4.8).
_V4_PINNED = ("x-oss-signature-version", "x-oss-credential", "x-oss-date")
_MATCH_OPERATORS = frozenset({"eq", "starts-with", "in", "not-in"})
_POLICY_FAILED = "Invalid according to Policy: "
_SCALARS = (str, int, float)


@dataclass(frozen=True, slots=True)
class PostPolicy:
    """A decoded policy document."""

    # Unix seconds.
    expiration: float
    # Raw JSON conditions, shapes already validated by `decode_policy`.
    conditions: list[object]


def authenticate_post(
    fields: Mapping[str, str], bucket: str, keys: KeyRing, now: float
) -> tuple[Authenticated, PostPolicy | None]:
    """Verify a PostObject form's signature (V1 or V4) and its policy's expiration.

    `fields` have lower-cased names. A form without signature fields is anonymous: its
    policy, if any, is still decoded and returned so its conditions can be enforced.
    Raises `InvalidPolicyDocument` (missing or undecodable policy), `InvalidAccessKeyId`,
    `SignatureDoesNotMatch`, `AccessDenied` (expired policy) or `InvalidArgument`.
    """
    v1 = bool(_V1_FIELDS & fields.keys())
    v4 = bool(_V4_FIELDS & fields.keys())
    if v1 and v4:
        raise ServiceError(
            "InvalidArgument", "The form carries both V1 (Signature) and V4 signature fields."
        )
    text = fields.get("policy")
    if not text:
        if v1 or v4:
            raise ServiceError("InvalidPolicyDocument", "A signed form needs a policy field.")
        return ANONYMOUS, None
    policy = decode_policy(text)
    token = fields.get("x-oss-security-token")
    if v1:
        authenticated = _verify_v1(fields, text, keys, token)
    elif v4:
        authenticated = _verify_v4(fields, bucket, text, keys, now, token, policy)
    else:
        authenticated = ANONYMOUS
    if now > policy.expiration:
        raise ServiceError("AccessDenied", _POLICY_FAILED + "Policy expired.")
    return authenticated, policy


def decode_policy(text: str) -> PostPolicy:
    """Decode the base64 JSON policy field; `InvalidPolicyDocument` when it is not one."""
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
        document = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise _invalid("the policy is not base64 of a UTF-8 JSON document") from None
    if not isinstance(document, dict):
        raise _invalid("the policy is not a JSON object")
    expiration, conditions = document.get("expiration"), document.get("conditions")
    if not isinstance(expiration, str):
        raise _invalid("the policy needs an expiration string")
    try:
        expires = datetime.fromisoformat(expiration)
    except ValueError:
        raise _invalid(f"expiration {expiration!r} is not an ISO 8601 date") from None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if not isinstance(conditions, list):
        raise _invalid("the policy needs a conditions list")
    for condition in conditions:
        _validate(condition)
    return PostPolicy(expires.timestamp(), conditions)


def check_conditions(
    policy: PostPolicy, fields: Mapping[str, str], bucket: str, file_size: int
) -> None:
    """Enforce every condition of the policy against the form and the file size.

    Field names are matched case-insensitively (`fields` are lower-cased); `bucket` is
    the target bucket. Failures: `AccessDenied` naming the condition,
    `EntityTooSmall` / `EntityTooLarge` for `content-length-range`.
    """
    for condition in policy.conditions:
        _validate(condition)
        if isinstance(condition, dict):
            for name, expected in condition.items():
                if _field(name, fields, bucket) != _text(expected):
                    raise _condition_failed(condition)
            continue
        assert isinstance(condition, list)
        operator = str(condition[0]).lower()
        if operator == "content-length-range":
            _check_size(int(condition[1]), int(condition[2]), file_size)
        elif not _matches(operator, _field(condition[1], fields, bucket), condition[2]):
            raise _condition_failed(condition)


def _verify_v1(
    fields: Mapping[str, str], text: str, keys: KeyRing, token: str | None
) -> Authenticated:
    key_id, provided = fields.get("ossaccesskeyid"), fields.get("signature")
    if not key_id or not provided:
        raise ServiceError(
            "InvalidArgument", "A V1 signed form needs both OSSAccessKeyId and Signature fields."
        )
    key = lookup_key(keys, key_id)
    if not same_signature(oss_v1.sign(key.secret, text), provided):
        raise signature_mismatch(key_id, provided, text)
    return Authenticated(key, "post-v1", token)


def _verify_v4(
    fields: Mapping[str, str],
    bucket: str,
    text: str,
    keys: KeyRing,
    now: float,
    token: str | None,
    policy: PostPolicy,
) -> Authenticated:
    missing = [name for name in (*_V4_PINNED, "x-oss-signature") if not fields.get(name)]
    if missing:
        raise ServiceError(
            "InvalidArgument", f"A V4 signed form needs the field(s) {', '.join(missing)}."
        )
    if fields["x-oss-signature-version"] != V4_ALGORITHM:
        raise ServiceError(
            "InvalidArgument",
            f"Unsupported x-oss-signature-version {fields['x-oss-signature-version']!r}.",
        )
    credential = oss_v4.parse_credential(fields["x-oss-credential"])
    stamp = fields["x-oss-date"]
    seconds = parse_iso_basic(stamp, "x-oss-date field")
    oss_v4.check_scope_date(credential, stamp)
    if now < seconds - MAX_CLOCK_SKEW_SECONDS:
        raise ServiceError(
            "AccessDenied", f"{_POLICY_FAILED}x-oss-date {stamp} is more than 15 minutes ahead."
        )
    if now > seconds + MAX_V4_POST_AGE_SECONDS:
        raise ServiceError(
            "AccessDenied", f"{_POLICY_FAILED}x-oss-date {stamp} is over 7 days old."
        )
    pinning = [condition for condition in policy.conditions if _pinned_names(condition)]
    unpinned = set(_V4_PINNED).difference(*(_pinned_names(c) for c in pinning))
    if unpinned:
        raise ServiceError(
            "AccessDenied", f"{_POLICY_FAILED}no condition pins {', '.join(sorted(unpinned))}."
        )
    key = lookup_key(keys, credential.key_id)
    derived = oss_v4.signing_key(key.secret, credential.date, credential.region, credential.product)
    provided = fields["x-oss-signature"]
    if not same_signature(oss_v4.sign(derived, text), provided):
        raise signature_mismatch(credential.key_id, provided, text)
    # The pinned values must be the ones the key was derived from.
    check_conditions(PostPolicy(policy.expiration, pinning), fields, bucket, 0)
    return Authenticated(key, "post-v4", token)


def _pinned_names(condition: object) -> set[str]:
    """The V4 signing fields an exact or eq condition pins."""
    if isinstance(condition, dict):
        names = {str(name).lower() for name in condition}
    elif isinstance(condition, list) and len(condition) > 1 and str(condition[0]).lower() == "eq":
        names = {str(condition[1]).lower().removeprefix("$")}
    else:
        return set()
    return names & set(_V4_PINNED)


def _validate(condition: object) -> None:
    if isinstance(condition, dict):
        if condition and all(_is_scalar(value) for value in condition.values()):
            return
    elif isinstance(condition, list) and len(condition) == 3 and isinstance(condition[0], str):
        operator, first, second = condition[0].lower(), condition[1], condition[2]
        if operator == "content-length-range":
            if _is_size(first) and _is_size(second) and int(first) <= int(second):
                return
        elif operator in _MATCH_OPERATORS and isinstance(first, str):
            if operator in ("in", "not-in"):
                if isinstance(second, list) and all(_is_scalar(value) for value in second):
                    return
            elif _is_scalar(second):
                return
    raise _invalid(f"unsupported condition {json.dumps(condition, ensure_ascii=False)}")


def _matches(operator: str, actual: str, expected: object) -> bool:
    if operator == "eq":
        return actual == _text(expected)
    if operator == "starts-with":
        return actual.startswith(_text(expected))
    assert isinstance(expected, list)
    found = actual in {_text(value) for value in expected}
    return found if operator == "in" else not found


def _check_size(minimum: int, maximum: int, size: int) -> None:
    if size < minimum:
        raise ServiceError(
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size.",
            {"ProposedSize": str(size), "MinSizeAllowed": str(minimum)},
        )
    if size > maximum:
        raise ServiceError(
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size.",
            {"ProposedSize": str(size), "MaxSizeAllowed": str(maximum)},
        )


def _field(name: object, fields: Mapping[str, str], bucket: str) -> str:
    # Absent fields read as "": an empty starts-with prefix then means "anything".
    field = str(name).lower().removeprefix("$")
    return bucket if field == "bucket" else fields.get(field, "")


def _is_scalar(value: object) -> bool:
    # bool is an int subclass, but true/false never equal a form field's text.
    return isinstance(value, _SCALARS) and not isinstance(value, bool)


def _is_size(value: object) -> bool:
    if isinstance(value, str):
        return value.isascii() and value.isdigit()
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _condition_failed(condition: object) -> ServiceError:
    text = json.dumps(condition, ensure_ascii=False)
    return ServiceError("AccessDenied", f"{_POLICY_FAILED}Policy Condition failed: {text}")


def _invalid(reason: str) -> ServiceError:
    return ServiceError("InvalidPolicyDocument", f"Invalid Policy: {reason}.")
