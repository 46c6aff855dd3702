"""Signing HTTP pushes (spec 12.5): the key pair on disk, the string to sign and the
headers. The spec's example string-to-sign is checked byte for byte, and signatures
are verified with the certificate's public key through `cryptography` directly, not
through `tidings.push`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tidings.auth.push import (
    CERT_FILE,
    KEY_FILE,
    PushSigner,
    content_md5,
    push_headers,
    push_string_to_sign,
)

SPEC_DATE = "Thu, 07 Mar 2024 18:50:02 GMT"
SPEC_CERT_URL = "http://example.com/cert.pem"
SPEC_HEADERS = {
    "content-md5": "NjU3NTkzYWU5ZDQ0M2VlNTk2MzM3NmQ0NDU4ODI4YmI=",
    "content-type": "text/xml;charset=utf-8",
    "date": SPEC_DATE,
    "x-mns-version": "2015-06-06",
    "x-mns-request-id": "65E9F0AAC1D2E3F40506070B",
    "x-mns-signing-cert-url": "aHR0cDovL2V4YW1wbGUuY29tL2NlcnQucGVt",
    "user-agent": "Aliyun Notification Service Agent",
}
SPEC_STRING_TO_SIGN = (
    "POST\n"
    "NjU3NTkzYWU5ZDQ0M2VlNTk2MzM3NmQ0NDU4ODI4YmI=\n"
    "text/xml;charset=utf-8\n"
    "Thu, 07 Mar 2024 18:50:02 GMT\n"
    "x-mns-request-id:65E9F0AAC1D2E3F40506070B\n"
    "x-mns-signing-cert-url:aHR0cDovL2V4YW1wbGUuY29tL2NlcnQucGVt\n"
    "x-mns-version:2015-06-06\n"
    "/notifications"
)
EXTRA = {
    "x-mns-message-id": "6A1F0C2B9D4E3F58-1-18E1A2B3C4D-200000011",
    "x-mns-message-tag": "important",
    "x-mns-topic-owner": "1234567890123456",
    "x-mns-topic-name": "t1",
    "x-mns-subscriber": "1234567890123456",
    "x-mns-subscription-name": "s1",
    "x-mns-publish-time": "1709837398123",
}


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> PushSigner:
    """One key pair for the module: RSA generation is the slow part."""
    return PushSigner.load_or_create(tmp_path_factory.mktemp("push-keys"))


def public_key(signer: PushSigner) -> rsa.RSAPublicKey:
    key = x509.load_pem_x509_certificate(signer.certificate_pem).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def verifies(signer: PushSigner, signature: str, text: str) -> bool:
    try:
        public_key(signer).verify(
            base64.b64decode(signature), text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1()
        )
    except Exception:
        return False
    return True


# --- the string to sign ------------------------------------------------------------


def test_string_to_sign_matches_the_spec_example() -> None:
    assert push_string_to_sign("POST", SPEC_HEADERS, "/notifications") == SPEC_STRING_TO_SIGN


def test_spec_example_cert_url_is_base64_of_the_url() -> None:
    assert base64.b64decode(SPEC_HEADERS["x-mns-signing-cert-url"]).decode() == SPEC_CERT_URL


def test_string_to_sign_with_missing_headers_has_empty_lines() -> None:
    text = push_string_to_sign("POST", {"date": SPEC_DATE}, "/n?a=1&b=2")
    assert text == f"POST\n\n\n{SPEC_DATE}\n/n?a=1&b=2"


def test_string_to_sign_sorts_every_mns_header_and_ignores_the_rest() -> None:
    headers = {**SPEC_HEADERS, **EXTRA, "authorization": "sig", "host": "h", "x-other": "o"}
    lines = push_string_to_sign("POST", headers, "/p").split("\n")
    mns_lines = lines[4:-1]
    assert mns_lines == sorted(mns_lines)
    assert len(mns_lines) == 3 + len(EXTRA)
    assert "x-mns-message-tag:important" in mns_lines
    assert not any(line.startswith(("authorization", "host", "x-other")) for line in lines)


# --- the key pair on disk ----------------------------------------------------------


def test_key_and_certificate_are_created_once_and_reused(tmp_path: Path) -> None:
    first = PushSigner.load_or_create(tmp_path)
    key_bytes = (tmp_path / KEY_FILE).read_bytes()
    second = PushSigner.load_or_create(tmp_path)
    assert second.certificate_pem == first.certificate_pem
    assert (tmp_path / CERT_FILE).read_bytes() == first.certificate_pem
    assert (tmp_path / KEY_FILE).read_bytes() == key_bytes
    text = "POST\n\n\n\n/x"
    assert verifies(first, second.sign(text), text)


def test_key_file_is_private(tmp_path: Path) -> None:
    PushSigner.load_or_create(tmp_path / "new" / "dir")
    assert stat.S_IMODE((tmp_path / "new" / "dir" / KEY_FILE).stat().st_mode) == 0o600


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    PushSigner.load_or_create(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CERT_FILE, KEY_FILE]


def test_key_is_rsa_2048_pkcs8(tmp_path: Path) -> None:
    PushSigner.load_or_create(tmp_path)
    pem = (tmp_path / KEY_FILE).read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048


def test_certificate_is_self_signed_for_ten_years(tmp_path: Path) -> None:
    signer = PushSigner.load_or_create(tmp_path, common_name="my-push")
    cert = x509.load_pem_x509_certificate(signer.certificate_pem)
    cn = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "my-push")])
    assert cert.subject == cn and cert.issuer == cn
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now
    lifetime = cert.not_valid_after_utc - now
    assert datetime.timedelta(days=3640) < lifetime <= datetime.timedelta(days=3651)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    key.verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        padding.PKCS1v15(),
        cert.signature_hash_algorithm,
    )


def test_missing_certificate_is_reissued_for_the_same_key(tmp_path: Path) -> None:
    first = PushSigner.load_or_create(tmp_path)
    (tmp_path / CERT_FILE).unlink()
    second = PushSigner.load_or_create(tmp_path)
    assert second.certificate_pem != first.certificate_pem  # a new serial number
    assert public_key(second) == public_key(first)


def test_certificate_of_another_key_is_replaced(tmp_path: Path) -> None:
    other = PushSigner.load_or_create(tmp_path / "other")
    mine = PushSigner.load_or_create(tmp_path / "mine")
    (tmp_path / "mine" / CERT_FILE).write_bytes(other.certificate_pem)
    reloaded = PushSigner.load_or_create(tmp_path / "mine")
    assert public_key(reloaded) == public_key(mine)
    text = "POST\n\n\n\n/x"
    assert verifies(reloaded, reloaded.sign(text), text)


def test_garbage_certificate_is_replaced(tmp_path: Path) -> None:
    first = PushSigner.load_or_create(tmp_path)
    (tmp_path / CERT_FILE).write_bytes(b"not a certificate")
    second = PushSigner.load_or_create(tmp_path)
    assert public_key(second) == public_key(first)


def test_key_of_another_type_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / KEY_FILE).write_bytes(pem)
    with pytest.raises(ValueError, match="RSA"):
        PushSigner.load_or_create(tmp_path)


# --- signatures and headers --------------------------------------------------------


def test_signature_verifies_with_the_certificate_key(signer: PushSigner) -> None:
    signature = signer.sign(SPEC_STRING_TO_SIGN)
    assert len(base64.b64decode(signature, validate=True)) == 256
    assert verifies(signer, signature, SPEC_STRING_TO_SIGN)
    assert not verifies(signer, signature, SPEC_STRING_TO_SIGN + "x")


def test_signature_is_deterministic(signer: PushSigner) -> None:
    assert signer.sign("abc") == signer.sign("abc")  # PKCS#1 v1.5 has no salt


def test_content_md5_is_base64_of_lower_hex() -> None:
    assert content_md5(b"hello") == base64.b64encode(b"5d41402abc4b2a76b9719d911017c592").decode()
    assert content_md5(b"") == base64.b64encode(hashlib.md5(b"").hexdigest().encode()).decode()


def make_headers(
    signer: PushSigner, body: bytes = b"<x/>", target: str = "/notifications"
) -> dict[str, str]:
    return push_headers(
        body,
        "text/xml;charset=utf-8",
        SPEC_CERT_URL,
        signer,
        target,
        EXTRA,
        SPEC_DATE,
        "65E9F0AAC1D2E3F40506070B",
    )


def test_push_headers_are_complete(signer: PushSigner) -> None:
    headers = make_headers(signer)
    expected_names = {
        "Date",
        "Content-Type",
        "Content-MD5",
        "x-mns-version",
        "x-mns-request-id",
        "x-mns-signing-cert-url",
        "Authorization",
        "User-Agent",
        *EXTRA,
    }
    assert set(headers) == expected_names
    assert headers["Date"] == SPEC_DATE
    assert headers["Content-Type"] == "text/xml;charset=utf-8"
    assert headers["Content-MD5"] == content_md5(b"<x/>")
    assert headers["x-mns-version"] == "2015-06-06"
    assert headers["x-mns-request-id"] == "65E9F0AAC1D2E3F40506070B"
    assert headers["x-mns-signing-cert-url"] == "aHR0cDovL2V4YW1wbGUuY29tL2NlcnQucGVt"
    assert headers["User-Agent"] == "Aliyun Notification Service Agent"
    for name, value in EXTRA.items():
        assert headers[name] == value
    assert all(n == n.lower() for n in headers if n.lower().startswith("x-mns-"))


def test_push_headers_authorization_is_the_bare_signature(signer: PushSigner) -> None:
    headers = make_headers(signer, target="/hook?x=1")
    authorization = headers["Authorization"]
    assert " " not in authorization and ":" not in authorization
    lower = {n.lower(): v for n, v in headers.items()}
    text = push_string_to_sign("POST", lower, "/hook?x=1")
    assert verifies(signer, authorization, text)
    assert not verifies(signer, authorization, push_string_to_sign("POST", lower, "/hook"))


def test_push_headers_without_extras_match_the_spec_string(signer: PushSigner) -> None:
    headers = push_headers(
        b"body",
        "text/xml;charset=utf-8",
        SPEC_CERT_URL,
        signer,
        "/notifications",
        {},
        SPEC_DATE,
        "65E9F0AAC1D2E3F40506070B",
    )
    expected = SPEC_STRING_TO_SIGN.replace(SPEC_HEADERS["content-md5"], content_md5(b"body"))
    assert verifies(signer, headers["Authorization"], expected)


@pytest.mark.parametrize(
    "extra",
    [
        {"X-MNS-Message-Id": "m"},
        {"x-other": "o"},
        {"content-type": "text/plain"},
        {"x-mns-version": "2099-01-01"},
        {"x-mns-signing-cert-url": "aGk="},
        {"x-mns-message-tag": "a\r\nx-evil: 1"},
        {"x-mns-message-tag": "a\nb"},
    ],
)
def test_push_headers_refuse_bad_extras(signer: PushSigner, extra: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        push_headers(b"", "text/plain", SPEC_CERT_URL, signer, "/", extra, SPEC_DATE, "r")


def test_push_headers_refuse_a_target_with_a_line_break(signer: PushSigner) -> None:
    with pytest.raises(ValueError):
        make_headers(signer, target="/a\r\nHost: evil")
