"""Signing the HTTP pushes of topic deliveries (spec 12.5).

A push is signed with RSA (PKCS#1 v1.5, SHA-1) over a string shaped like an MNS request
signature. The receiver fetches our X.509 certificate from the URL named in
`x-mns-signing-cert-url` and checks the signature with its public key
(`tidings.push.verify`). The key pair is the server's own, created on first use.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

KEY_FILE = "push-key.pem"
CERT_FILE = "push-cert.pem"
KEY_BITS = 2048
CERT_VALIDITY = datetime.timedelta(days=3650)
# Backdated so a receiver whose clock runs a little behind ours still sees it as valid.
CERT_BACKDATE = datetime.timedelta(minutes=10)
CERT_RENEW_BEFORE = datetime.timedelta(days=30)
MNS_VERSION = "2015-06-06"
USER_AGENT = "Aliyun Notification Service Agent"

_FIXED_MNS_HEADERS = frozenset({"x-mns-version", "x-mns-request-id", "x-mns-signing-cert-url"})


def push_string_to_sign(method: str, headers: Mapping[str, str], target: str) -> str:
    """The string a push signature covers; `headers` have lower-case names.

    Lines: method, Content-MD5, Content-Type, Date (each "" when absent), then every
    x-mns-* header sorted by name as `name:value`, then the request target (path and
    query exactly as sent). Kept separate from MNS request signing, which it resembles,
    because receivers depend on this one and it must not move with server-side fixes.
    """
    canonical = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(h for h in headers if h.startswith("x-mns-"))
    )
    return (
        f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{headers.get('date', '')}\n{canonical}{target}"
    )


def content_md5(body: bytes) -> str:
    """Content-MD5 in the SDK's form: Base64 of the lower-case hex MD5 of the body.

    Chosen over the newer upper-case hex form (spec 12.5) because receivers written for
    MNS requests already accept it, and it is what `tidings.auth.mns` expects too.
    """
    return base64.b64encode(hashlib.md5(body).hexdigest().encode("ascii")).decode("ascii")


def _write_atomically(path: Path, data: bytes, mode: int, *, replace: bool) -> bool:
    """Write `data` to `path` through a temporary file; False when `replace` is off and
    `path` already exists (another process won the race), leaving it untouched."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
            return True
        try:
            # link() refuses an existing target, so two processes creating the key at
            # once end up sharing one instead of each signing with its own.
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        Path(temporary).unlink(missing_ok=True)


def _new_certificate(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CERT_BACKDATE)
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())  # the certificate's own signature; pushes use SHA-1
    )


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


class PushSigner:
    """The server's push signing key and the self-signed certificate receivers fetch."""

    def __init__(self, key: rsa.RSAPrivateKey, certificate_pem: bytes) -> None:
        self._key = key
        self.certificate_pem = certificate_pem

    @classmethod
    def load_or_create(cls, directory: Path, common_name: str = "tidings-push") -> PushSigner:
        """Load `push-key.pem` and `push-cert.pem` from `directory`, creating what is missing.

        The key (RSA-2048, PKCS#8, mode 0600) is created once and then kept: receivers
        may have cached its certificate. A missing certificate, or one that does not
        match the key or expires within 30 days, is re-issued from the key (self-signed,
        valid 10 years).
        """
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
        if key_path.exists():
            key = _load_key(key_path)
        else:
            fresh = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
            pem = fresh.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            created = _write_atomically(key_path, pem, 0o600, replace=False)
            key = fresh if created else _load_key(key_path)
        certificate_pem = cert_path.read_bytes() if cert_path.exists() else b""
        if not _certificate_matches(certificate_pem, key):
            certificate = _new_certificate(key, common_name)
            certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
            _write_atomically(cert_path, certificate_pem, 0o644, replace=True)
        return cls(key, certificate_pem)

    def sign(self, string_to_sign: str) -> str:
        """Base64 of the RSASSA-PKCS1-v1_5 SHA-1 signature of the UTF-8 string."""
        signature = self._key.sign(
            string_to_sign.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1()
        )
        return base64.b64encode(signature).decode("ascii")


def _certificate_matches(certificate_pem: bytes, key: rsa.RSAPrivateKey) -> bool:
    if not certificate_pem:
        return False
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        return False
    # A certificate about to expire is re-issued too; the key, and so every signature
    # receivers check, stays the same.
    renew_after = datetime.datetime.now(datetime.UTC) + CERT_RENEW_BEFORE
    return certificate.public_key() == key.public_key() and (
        certificate.not_valid_after_utc > renew_after
    )


def _check_header(name: str, value: str) -> None:
    # A value with a line break would smuggle headers into the request.
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"header {name} has a line break or NUL in its value")


def push_headers(
    body: bytes,
    content_type: str,
    cert_url: str,
    signer: PushSigner,
    target: str,
    extra: Mapping[str, str],
    date: str,
    request_id: str,
) -> dict[str, str]:
    """Every header of a signed push (spec 12.5) except those the HTTP client derives
    from the connection (Host, Content-Length, Connection).

    `target` is the request path and query exactly as they will be sent; `date` an RFC
    1123 date; `extra` the delivery's own x-mns-* headers (message id, tag, topic
    owner/name, subscriber, subscription name, publish time) with lower-case names.
    Content-MD5 uses the SDK's form (`content_md5`). Authorization is the bare signature.
    """
    headers = {
        "Date": date,
        "Content-Type": content_type,
        "Content-MD5": content_md5(body),
        "x-mns-version": MNS_VERSION,
        "x-mns-request-id": request_id,
        "x-mns-signing-cert-url": base64.b64encode(cert_url.encode("utf-8")).decode("ascii"),
    }
    for name, value in extra.items():
        if not name.startswith("x-mns-") or name != name.lower():
            raise ValueError(f"extra header {name!r} is not a lower-case x-mns-* name")
        if name in _FIXED_MNS_HEADERS:
            raise ValueError(f"extra header {name!r} would replace one push_headers sets")
        headers[name] = value
    for name, value in headers.items():
        _check_header(name, value)
    _check_header("target", target)
    lower = {name.lower(): value for name, value in headers.items()}
    headers["Authorization"] = signer.sign(push_string_to_sign("POST", lower, target))
    headers["User-Agent"] = USER_AGENT
    return headers
