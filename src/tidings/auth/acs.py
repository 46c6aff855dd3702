"""Alibaba Cloud OpenAPI request signatures, as the `mns-open` control plane requires.

Two schemes reach the control plane from the official SDKs (`alibabacloud_tea_openapi`):

* **ACS3** (the SDK default since tea-openapi 0.3): an `Authorization:
  ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>` header over a
  canonical request (method, path, sorted query, the signed headers, SHA-256 of the body),
  with `x-acs-date` as the timestamp. `ACS3-HMAC-SM3` is the same with SM3.
* **RPC signature 1.0** (`Config.signature_algorithm = "v2"`, and older SDKs): HMAC-SHA1
  over every query and form parameter, sent as the `Signature` parameter with
  `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`, `Timestamp` and `SignatureNonce`.

Pure functions: the API layer hands in the decoded parameters, the headers (lower-case
names) and the body, and gets back the verified key or a `ServiceError`. Nonce reuse is
not tracked: the 15-minute timestamp window bounds replays, as for the data plane.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from urllib.parse import quote

from tidings.auth.keys import AccessKey, KeyRing
from tidings.errors import ServiceError

MAX_CLOCK_SKEW_SECONDS = 15 * 60
ACS3_SHA256 = "ACS3-HMAC-SHA256"
ACS3_SM3 = "ACS3-HMAC-SM3"
RPC_METHOD = "HMAC-SHA1"
RPC_VERSION = "1.0"
# Parameters that carry the RPC signature itself rather than being covered by it.
RPC_SIGNATURE_PARAM = "Signature"
# Headers whose change would change what the request does or when it was made: a
# signature that leaves them out could be replayed as another operation.
REQUIRED_SIGNED_HEADERS = ("x-acs-action", "x-acs-date")

Params = Sequence[tuple[str, str]]


def _digest_name(algorithm: str) -> str:
    if algorithm == ACS3_SHA256:
        return "sha256"
    if algorithm == ACS3_SM3 and "sm3" in hashlib.algorithms_available:
        return "sm3"
    raise ServiceError(
        "InvalidSignatureMethod",
        f"The signature algorithm {algorithm!r} is not supported; sign with {ACS3_SHA256}"
        f" (the SDK default), {ACS3_SM3} or RPC {RPC_METHOD} (signature_algorithm='v2').",
    )


def encode(value: str) -> str:
    """RFC 3986 percent-encoding as both schemes use it: only `A-Za-z0-9-_.~` stay."""
    return quote(value, safe="~", encoding="utf-8")


def payload_hash(body: bytes, algorithm: str = ACS3_SHA256) -> str:
    """Hex digest of the request body, as `x-acs-content-sha256` carries it."""
    return hashlib.new(_digest_name(algorithm), body).hexdigest()


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Parameters sorted by name, names and values percent-encoded, joined by `&`."""
    return "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params))


def acs3_canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    hashed_payload: str,
) -> str:
    """The ACS3 canonical request: the signed headers in the order the client listed them."""
    canonical_headers = "".join(
        f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers
    )
    return (
        f"{method}\n{path or '/'}\n{canonical_query(query)}\n"
        f"{canonical_headers}\n{';'.join(signed_headers)}\n{hashed_payload}"
    )


def acs3_string_to_sign(canonical_request: str, algorithm: str = ACS3_SHA256) -> str:
    """`<algorithm>\\n<hex digest of the canonical request>`."""
    digest = hashlib.new(_digest_name(algorithm), canonical_request.encode("utf-8")).hexdigest()
    return f"{algorithm}\n{digest}"


def acs3_signature(secret: str, string_to_sign: str, algorithm: str = ACS3_SHA256) -> str:
    """Hex HMAC of the string to sign under the AccessKey secret."""
    return hmac.new(
        secret.encode("utf-8"), string_to_sign.encode("utf-8"), _digest_name(algorithm)
    ).hexdigest()


def rpc_string_to_sign(method: str, params: Iterable[tuple[str, str]]) -> str:
    """`<METHOD>&%2F&<encoded canonical query>`, every parameter but `Signature` included."""
    kept = [(k, v) for k, v in params if k != RPC_SIGNATURE_PARAM]
    return f"{method}&{encode('/')}&{encode(canonical_query(kept))}"


def rpc_signature(secret: str, string_to_sign: str) -> str:
    """Base64 HMAC-SHA1 under `secret&` (the empty token secret of signature 1.0)."""
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def check_timestamp(value: str | None, name: str, now: float) -> None:
    """Refuse a missing, malformed or stale ISO 8601 UTC timestamp (15 minutes either way)."""
    if not value:
        raise ServiceError(
            "MissingTimestamp",
            f"The request needs {name} (ISO 8601 UTC, e.g. 2024-03-07T18:49:58Z).",
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ServiceError(
            "InvalidTimeStamp.Format",
            f"{name} {value!r} is not an ISO 8601 UTC time such as 2024-03-07T18:49:58Z.",
        )
    skew = abs(parsed.timestamp() - now)
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise ServiceError(
            "InvalidTimeStamp.Expired",
            f"{name} {value} differs from the server time by {int(skew)} s; at most"
            f" {MAX_CLOCK_SKEW_SECONDS} s are allowed. Check the client's clock.",
        )


def _lookup(keys: KeyRing, key_id: str) -> AccessKey:
    key = keys.get(key_id)
    if key is None:
        raise ServiceError(
            "InvalidAccessKeyId.NotFound",
            f"The AccessKey ID {key_id!r} does not exist; use a key the server was started"
            " with (TIDINGS_ACCESS_KEY_ID).",
        )
    return key


def _mismatch(what: str, signed_text: str) -> ServiceError:
    # The signed text carries no secret; showing it lets a client author find the
    # difference from what was signed, as the cloud's own message does.
    return ServiceError(
        "SignatureDoesNotMatch",
        "The request signature does not match the server's calculation; check the"
        f" AccessKey secret. The server's {what} was: {signed_text!r}",
    )


def parse_acs3_authorization(value: str) -> tuple[str, str, list[str], str]:
    """(algorithm, key id, signed header names, signature) of an ACS3 Authorization header."""
    algorithm, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if sep:
            fields[name] = field_value
    key_id = fields.get("Credential", "")
    signed = [h for h in fields.get("SignedHeaders", "").split(";") if h]
    signature = fields.get("Signature", "")
    if not key_id or not signed or not signature:
        raise ServiceError(
            "IncompleteSignature",
            "The Authorization header must look like '<algorithm> Credential=<AccessKeyId>,"
            "SignedHeaders=<name;name>,Signature=<hex>'.",
        )
    return algorithm, key_id, [h.lower() for h in signed], signature


def verify_acs3(
    keys: KeyRing,
    method: str,
    path: str,
    query: Params,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> AccessKey:
    """Check an ACS3 `Authorization` header; return the key that signed the request.

    `query` holds the decoded query parameters (not the form body: ACS3 covers the body
    through its hash). `now` is real wall time, never the scaled server clock.
    """
    algorithm, key_id, signed, signature = parse_acs3_authorization(headers["authorization"])
    digest = _digest_name(algorithm)
    for name in REQUIRED_SIGNED_HEADERS:
        if name not in signed:
            raise ServiceError(
                "IncompleteSignature", f"The header {name} must be among the SignedHeaders."
            )
    check_timestamp(headers.get("x-acs-date"), "x-acs-date", time.time() if now is None else now)
    key = _lookup(keys, key_id)
    hashed = hashlib.new(digest, body).hexdigest()
    declared = headers.get("x-acs-content-sha256")
    if declared is not None and declared.lower() != hashed:
        raise ServiceError(
            "SignatureDoesNotMatch",
            "x-acs-content-sha256 is not the hash of the body received; do not change the"
            " body after signing.",
        )
    canonical = acs3_canonical_request(method, path, query, headers, signed, hashed)
    text = acs3_string_to_sign(canonical, algorithm)
    if not hmac.compare_digest(acs3_signature(key.secret, text, algorithm), signature.lower()):
        raise _mismatch("canonical request", canonical)
    return key


def verify_rpc(keys: KeyRing, method: str, params: Params, now: float | None = None) -> AccessKey:
    """Check an RPC signature 1.0; `params` are the query and form parameters together."""
    values = dict(params)
    if values.get("SignatureType") == "BEARERTOKEN":
        raise ServiceError(
            "InvalidSignatureMethod",
            "Bearer tokens are not supported; sign with an AccessKey pair.",
        )
    signature_method = values.get("SignatureMethod", "")
    if signature_method != RPC_METHOD:
        raise ServiceError(
            "InvalidSignatureMethod",
            f"SignatureMethod {signature_method!r} is not supported; use {RPC_METHOD}.",
        )
    if values.get("SignatureVersion", RPC_VERSION) != RPC_VERSION:
        raise ServiceError(
            "InvalidSignatureVersion",
            f"SignatureVersion {values['SignatureVersion']!r} is not supported; use 1.0.",
        )
    key_id = values.get("AccessKeyId")
    signature = values.get(RPC_SIGNATURE_PARAM)
    if not key_id or not signature:
        raise ServiceError(
            "IncompleteSignature", "The request needs the AccessKeyId and Signature parameters."
        )
    check_timestamp(values.get("Timestamp"), "Timestamp", time.time() if now is None else now)
    key = _lookup(keys, key_id)
    text = rpc_string_to_sign(method, params)
    if not hmac.compare_digest(rpc_signature(key.secret, text), signature):
        raise _mismatch("string to sign", text)
    return key


def verify(
    keys: KeyRing,
    method: str,
    path: str,
    query: Params,
    form: Params,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> AccessKey:
    """Authenticate a control-plane request by whichever scheme it was signed with."""
    authorization = headers.get("authorization")
    if authorization is not None and authorization.lstrip().startswith("ACS3-"):
        return verify_acs3(keys, method, path, query, headers, body, now)
    params = [*query, *form]
    if any(name == RPC_SIGNATURE_PARAM for name, _ in params):
        return verify_rpc(keys, method, params, now)
    raise ServiceError(
        "IncompleteSignature",
        "The request is not signed: send an 'Authorization: ACS3-HMAC-SHA256 ...' header"
        " or the RPC Signature parameters, as the official SDKs do.",
    )
