"""Verify that an HTTP push really comes from your Tidings (or MNS) topic.

Each push names, in `x-mns-signing-cert-url`, the URL of the X.509 certificate whose
key signed it. `verify()` checks the date, the body's Content-MD5, that the URL is one
you trust, and the RSA-SHA1 signature, fetching each certificate once. Example endpoint
(`examples/push_endpoint.py` is a fuller one)::

    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tidings import push

    TRUSTED = ["https://tidings.example.com/mns-reserved-cert/"]  # your server's cert URL

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = dict(self.headers.items())
            ok = push.verify(headers, body, self.path, allowed_cert_url_prefixes=TRUSTED)
            if ok:
                print(body.decode("utf-8"))
            self.send_response(204 if ok else 403)
            self.end_headers()

    ThreadingHTTPServer(("", 8000), Endpoint).serve_forever()

Always pass `allowed_cert_url_prefixes` in production: without it anyone can sign a
push with their own certificate, and your endpoint fetches whatever URL a request names.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import threading
import time
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tidings.auth.push import push_string_to_sign

__all__ = ["clear_certificate_cache", "verify"]

DEFAULT_MAX_AGE_SECONDS = 900.0
FETCH_TIMEOUT_SECONDS = 5.0
MAX_CERTIFICATE_BYTES = 64 * 1024
CERT_CACHE_SIZE = 32
# Cached certificates are refetched now and then, so a server that re-issues its
# certificate is picked up without restarting the endpoint.
CERT_CACHE_TTL_SECONDS = 3600.0

_cache: OrderedDict[str, tuple[rsa.RSAPublicKey, float]] = OrderedDict()
_cache_lock = threading.Lock()  # http.server endpoints are often threaded


def clear_certificate_cache() -> None:
    """Forget every cached certificate (they are refetched on the next push)."""
    with _cache_lock:
        _cache.clear()


def _http_get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "tidings-push-verify"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
        data: bytes = response.read(MAX_CERTIFICATE_BYTES + 1)
    return data


def _public_key(url: str, fetch: Callable[[str], bytes]) -> rsa.RSAPublicKey | None:
    """The RSA key of the certificate at `url`, from the cache or fetched; None if the
    URL does not serve an RSA certificate. Failures are not cached: a retry may work."""
    with _cache_lock:
        cached = _cache.get(url)
        if cached is not None and time.monotonic() - cached[1] < CERT_CACHE_TTL_SECONDS:
            _cache.move_to_end(url)
            return cached[0]
    # Fetched outside the lock, so one slow certificate server does not stall others.
    try:
        pem = fetch(url)
    except Exception:  # urllib alone raises URLError, HTTPError, timeouts, OSError …
        return None
    if len(pem) > MAX_CERTIFICATE_BYTES:
        return None
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        return None
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    with _cache_lock:
        _cache[url] = (key, time.monotonic())
        _cache.move_to_end(url)
        while len(_cache) > CERT_CACHE_SIZE:
            _cache.popitem(last=False)
    return key


def _as_sent(value: str) -> str:
    """A header value as the sender wrote it. Non-ASCII values (a tag like "标签") travel
    as UTF-8 bytes, which most servers hand over decoded as Latin-1: undo that."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not mojibake: the framework already decoded it as UTF-8
        return value


def _date_is_fresh(value: str, max_age_seconds: float, now: float) -> bool:
    try:
        sent = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if sent.tzinfo is None:  # "-0000" parses naive: the zone is unknown
        return False
    return abs(sent.timestamp() - now) <= max_age_seconds


def _md5_matches(value: str, body: bytes) -> bool:
    """Content-MD5 in any form a sender uses: Base64 of the hex digest (the SDK's and
    older deliveries'), the bare hex digest (newer deliveries), or RFC 1864's."""
    digest = hashlib.md5(body)
    hex_lower = digest.hexdigest()
    if len(value) == 32:
        return value.lower() == hex_lower
    accepted = (hex_lower.encode("ascii"), hex_lower.upper().encode("ascii"), digest.digest())
    return value in {base64.b64encode(form).decode("ascii") for form in accepted}


def _certificate_url(encoded: str, allowed_prefixes: Sequence[str] | None) -> str | None:
    try:
        url = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    parts = urllib.parse.urlsplit(url)
    # Only HTTP(S): urllib would also open file:// and ftp:// URLs a request names.
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if allowed_prefixes is not None and not any(url.startswith(p) for p in allowed_prefixes):
        return None
    return url


def _verify(
    headers: Mapping[str, str],
    body: bytes,
    path: str,
    max_age_seconds: float,
    allowed_prefixes: Sequence[str] | None,
    fetch: Callable[[str], bytes],
    now: float,
) -> bool:
    lower = {name.lower(): _as_sent(value) for name, value in headers.items()}
    date = lower.get("date")
    encoded_url = lower.get("x-mns-signing-cert-url")
    authorization = lower.get("authorization")
    if not date or not encoded_url or not authorization:
        return False
    # Cheap checks first: a stale or mangled request never makes us fetch anything.
    if not _date_is_fresh(date, max_age_seconds, now):
        return False
    md5 = lower.get("content-md5")
    if md5 and not _md5_matches(md5, body):
        return False
    url = _certificate_url(encoded_url, allowed_prefixes)
    if url is None:
        return False
    try:
        signature = base64.b64decode(authorization, validate=True)
    except (binascii.Error, ValueError):
        return False
    key = _public_key(url, fetch)
    if key is None:
        return False
    signed = push_string_to_sign("POST", lower, path).encode("utf-8")
    try:
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


def verify(
    headers: Mapping[str, str],
    body: bytes,
    path: str,
    *,
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    allowed_cert_url_prefixes: Sequence[str] | None = None,
    fetch: Callable[[str], bytes] | None = None,
    now: float | None = None,
) -> bool:
    """Whether a push request is authentic, fresh and intact; never raises.

    `headers` are the request headers (any name case), `body` the raw body bytes and
    `path` the request target exactly as received, query included (`self.path` in
    http.server). The certificate URL must start with one of
    `allowed_cert_url_prefixes` when given (end each prefix with "/" so that
    `https://host.evil` cannot pass for `https://host`). `fetch` downloads a
    certificate's PEM (default: HTTP GET, 5 s timeout); certificates are cached by URL.
    The Date header must be within `max_age_seconds` of `now` (default: the clock).
    A Content-MD5 header, when present, must match the body; the signature covers
    only the header, so a push without one has an unprotected body (Tidings and MNS
    always send it).
    """
    try:
        return _verify(
            headers,
            body,
            path,
            max_age_seconds,
            allowed_cert_url_prefixes,
            _http_get if fetch is None else fetch,
            time.time() if now is None else now,
        )
    except Exception:  # fail closed: a hostile request must never crash the endpoint
        return False
