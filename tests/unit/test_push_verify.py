"""The receiver-side helper `tidings.push.verify` (spec 12.5).

Pushes are signed by the server's `PushSigner`/`push_headers`; every kind of tampering
or malformed input must give False, never an exception. One test runs a real
http.server endpoint and serves the certificate over HTTP, so the default fetcher and
the headers object http.server hands to user code are exercised too.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

import tidings.push
from tests.http_support import serve_http
from tidings.auth.push import PushSigner, push_headers, push_string_to_sign
from tidings.push import clear_certificate_cache, verify

CERT_URL = "https://push.example.com/push-cert.pem"
OTHER_URL = "https://push.example.com/other-cert.pem"
DATE = "Thu, 07 Mar 2024 18:50:02 GMT"
NOW = 1709837402.0  # the instant DATE names
PATH = "/notifications"
BODY = b'<?xml version="1.0" encoding="utf-8"?><Notification/>'
EXTRA = {"x-mns-message-id": "M1", "x-mns-topic-name": "t1", "x-mns-publish-time": "1709837402000"}


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> PushSigner:
    return PushSigner.load_or_create(tmp_path_factory.mktemp("signer"))


@pytest.fixture(scope="module")
def other_signer(tmp_path_factory: pytest.TempPathFactory) -> PushSigner:
    return PushSigner.load_or_create(tmp_path_factory.mktemp("other"))


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    clear_certificate_cache()
    yield
    clear_certificate_cache()


class Fetcher:
    """Serves certificates by URL and counts the fetches."""

    def __init__(self, certificates: dict[str, bytes]) -> None:
        self.certificates = certificates
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        return self.certificates[url]


@pytest.fixture
def fetch(signer: PushSigner) -> Fetcher:
    return Fetcher({CERT_URL: signer.certificate_pem, OTHER_URL: signer.certificate_pem})


def signed(
    signer: PushSigner, body: bytes = BODY, path: str = PATH, url: str = CERT_URL
) -> dict[str, str]:
    return push_headers(
        body, "text/xml;charset=utf-8", url, signer, path, EXTRA, DATE, "65E9F0AAC1D2E3F4"
    )


def check(headers: dict[str, str], fetch: Callable[[str], bytes], **kwargs: Any) -> bool:
    options: dict[str, Any] = {"fetch": fetch, "now": NOW, **kwargs}
    body = options.pop("body", BODY)
    path = options.pop("path", PATH)
    return verify(headers, body, path, **options)


def sign_manually(signer: PushSigner, headers: dict[str, str], path: str = PATH) -> dict[str, str]:
    """Sign arbitrary headers (e.g. another Content-MD5 form, or none)."""
    lower = {n.lower(): v for n, v in headers.items()}
    return {**headers, "Authorization": signer.sign(push_string_to_sign("POST", lower, path))}


# --- accepted ----------------------------------------------------------------------


def test_signed_push_is_accepted(signer: PushSigner, fetch: Fetcher) -> None:
    assert check(signed(signer), fetch)


def test_header_names_are_matched_case_insensitively(signer: PushSigner, fetch: Fetcher) -> None:
    headers = signed(signer)
    assert check({n.upper(): v for n, v in headers.items()}, fetch)
    assert check({n.title(): v for n, v in headers.items()}, fetch)


def test_path_with_query_is_covered(signer: PushSigner, fetch: Fetcher) -> None:
    headers = signed(signer, path="/hook?a=1&b=2")
    assert check(headers, fetch, path="/hook?a=1&b=2")
    assert not check(headers, fetch, path="/hook?a=1&b=3")
    assert not check(headers, fetch, path="/hook")


@pytest.mark.parametrize(
    "form",
    [
        lambda d: base64.b64encode(d.hexdigest().encode()).decode(),  # SDK / older deliveries
        lambda d: base64.b64encode(d.hexdigest().upper().encode()).decode(),
        lambda d: d.hexdigest().upper(),  # newer deliveries
        lambda d: d.hexdigest(),
        lambda d: base64.b64encode(d.digest()).decode(),  # RFC 1864
    ],
)
def test_every_content_md5_form_is_accepted(
    signer: PushSigner, fetch: Fetcher, form: Callable[[Any], str]
) -> None:
    headers = sign_manually(
        signer,
        {
            "Date": DATE,
            "Content-Type": "text/plain",
            "Content-MD5": form(hashlib.md5(BODY)),
            "x-mns-signing-cert-url": base64.b64encode(CERT_URL.encode()).decode(),
        },
    )
    assert check(headers, fetch)
    assert not check(headers, fetch, body=BODY + b" ")


def test_push_without_content_md5_is_accepted(signer: PushSigner, fetch: Fetcher) -> None:
    headers = sign_manually(
        signer,
        {"Date": DATE, "x-mns-signing-cert-url": base64.b64encode(CERT_URL.encode()).decode()},
    )
    assert check(headers, fetch)


def test_allowed_prefix_is_accepted(signer: PushSigner, fetch: Fetcher) -> None:
    prefixes = ["https://elsewhere.example.com/", "https://push.example.com/"]
    assert check(signed(signer), fetch, allowed_cert_url_prefixes=prefixes)


@pytest.mark.parametrize("offset", [-899.0, 0.0, 899.0])
def test_date_within_the_window_is_accepted(
    signer: PushSigner, fetch: Fetcher, offset: float
) -> None:
    assert check(signed(signer), fetch, now=NOW + offset)


# --- refused -----------------------------------------------------------------------


def test_tampered_body_is_refused(signer: PushSigner, fetch: Fetcher) -> None:
    assert not check(signed(signer), fetch, body=BODY.replace(b"Notification", b"Notificatio"))
    assert not check(signed(signer), fetch, body=b"")


@pytest.mark.parametrize(
    "name", ["Content-Type", "x-mns-message-id", "x-mns-topic-name", "x-mns-request-id"]
)
def test_tampered_header_is_refused(signer: PushSigner, fetch: Fetcher, name: str) -> None:
    headers = signed(signer)
    headers[name] += "x"
    assert not check(headers, fetch)


def test_added_or_removed_mns_header_is_refused(signer: PushSigner, fetch: Fetcher) -> None:
    added = {**signed(signer), "x-mns-message-tag": "sneaky"}
    assert not check(added, fetch)
    removed = signed(signer)
    del removed["x-mns-topic-name"]
    assert not check(removed, fetch)


def test_unsigned_headers_do_not_matter(signer: PushSigner, fetch: Fetcher) -> None:
    headers = {**signed(signer), "X-Forwarded-For": "10.0.0.1", "User-Agent": "proxy"}
    assert check(headers, fetch)


def test_tampered_path_is_refused(signer: PushSigner, fetch: Fetcher) -> None:
    assert not check(signed(signer), fetch, path="/notifications/")
    assert not check(signed(signer), fetch, path="/other")


@pytest.mark.parametrize("offset", [-901.0, 901.0, 86400.0])
def test_date_outside_the_window_is_refused(
    signer: PushSigner, fetch: Fetcher, offset: float
) -> None:
    assert not check(signed(signer), fetch, now=NOW + offset)
    assert fetch.calls == []  # refused before any fetch


def test_max_age_is_configurable(signer: PushSigner, fetch: Fetcher) -> None:
    assert not check(signed(signer), fetch, now=NOW + 61, max_age_seconds=60)
    assert check(signed(signer), fetch, now=NOW + 59, max_age_seconds=60)


@pytest.mark.parametrize("date", ["yesterday", "", "Thu, 07 Mar 2024 18:50:02 -0000", "Thu, 99"])
def test_malformed_date_is_refused(signer: PushSigner, fetch: Fetcher, date: str) -> None:
    headers = sign_manually(signer, {**signed(signer), "Date": date})
    assert not check(headers, fetch)


def test_wrong_certificate_is_refused(
    signer: PushSigner, other_signer: PushSigner, fetch: Fetcher
) -> None:
    fetch.certificates[CERT_URL] = other_signer.certificate_pem
    assert not check(signed(signer), fetch)


def test_signature_of_another_key_is_refused(
    signer: PushSigner, other_signer: PushSigner, fetch: Fetcher
) -> None:
    assert not check(signed(other_signer), fetch)


def test_disallowed_prefix_is_refused_without_fetching(signer: PushSigner, fetch: Fetcher) -> None:
    for prefixes in (
        ["https://mnstest.oss-cn-hangzhou.aliyuncs.com/"],
        ["https://push.example.com/x"],
        [],
    ):
        assert not check(signed(signer), fetch, allowed_cert_url_prefixes=prefixes)
    assert fetch.calls == []


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://push.example.com/c.pem", "https:///c.pem", "push.example.com/c"],
)
def test_non_http_cert_url_is_refused_without_fetching(
    signer: PushSigner, fetch: Fetcher, url: str
) -> None:
    assert not check(signed(signer, url=url), fetch)
    assert fetch.calls == []


@pytest.mark.parametrize(
    "value", ["%%%", "aGVsbG8", "aHR0c HM6Ly9", base64.b64encode(b"\xff\xfe").decode()]
)
def test_garbage_cert_url_is_refused(signer: PushSigner, fetch: Fetcher, value: str) -> None:
    headers = sign_manually(signer, {**signed(signer), "x-mns-signing-cert-url": value})
    assert not check(headers, fetch)
    assert fetch.calls == []


@pytest.mark.parametrize("value", ["", "!!!not base64!!!", "abc", "QUJD", "MNS id:sig"])
def test_garbage_authorization_is_refused(signer: PushSigner, fetch: Fetcher, value: str) -> None:
    assert not check({**signed(signer), "Authorization": value}, fetch)


@pytest.mark.parametrize("name", ["Date", "x-mns-signing-cert-url", "Authorization"])
def test_missing_header_is_refused(signer: PushSigner, fetch: Fetcher, name: str) -> None:
    headers = signed(signer)
    del headers[name]
    assert not check(headers, fetch)


def test_empty_headers_are_refused(fetch: Fetcher) -> None:
    assert not check({}, fetch)


def test_certificate_fetch_problems_are_refused(signer: PushSigner) -> None:
    def failing(url: str) -> bytes:
        raise OSError("connection refused")

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_signer_pem = _self_signed_ec(ec_key)
    for fetcher in (
        failing,
        Fetcher({CERT_URL: b"not a certificate"}),
        Fetcher({CERT_URL: b""}),
        Fetcher({CERT_URL: ec_signer_pem}),
        Fetcher({CERT_URL: signer.certificate_pem + b"\n" * (64 * 1024)}),
        Fetcher({}),  # KeyError
    ):
        assert not check(signed(signer), fetcher)


def _self_signed_ec(key: ec.EllipticCurvePrivateKey) -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_non_string_values_are_refused(signer: PushSigner, fetch: Fetcher) -> None:
    headers: dict[str, Any] = {**signed(signer), "Date": None}
    assert not check(headers, fetch)
    assert not verify(signed(signer), "text body", PATH, fetch=fetch, now=NOW)  # type: ignore[arg-type]


# --- the certificate cache ---------------------------------------------------------


def test_fetch_is_called_once_per_url(signer: PushSigner, fetch: Fetcher) -> None:
    for _ in range(3):
        assert check(signed(signer), fetch)
        assert check(signed(signer, url=OTHER_URL), fetch)
    assert fetch.calls == [CERT_URL, OTHER_URL]


def test_failed_fetches_are_not_cached(signer: PushSigner) -> None:
    fetcher = Fetcher({})
    assert not check(signed(signer), fetcher)
    fetcher.certificates[CERT_URL] = signer.certificate_pem
    assert check(signed(signer), fetcher)
    assert fetcher.calls == [CERT_URL, CERT_URL]


def test_cache_is_bounded(signer: PushSigner) -> None:
    size = tidings.push.CERT_CACHE_SIZE
    urls = [f"https://push.example.com/{n}.pem" for n in range(size + 1)]
    fetcher = Fetcher(dict.fromkeys(urls, signer.certificate_pem))
    for url in urls:
        assert check(signed(signer, url=url), fetcher)
    assert len(tidings.push._cache) == size
    assert check(signed(signer, url=urls[-1]), fetcher)  # still cached
    assert check(signed(signer, url=urls[0]), fetcher)  # evicted: fetched again
    assert fetcher.calls == [*urls, urls[0]]


def test_cached_certificates_expire(
    signer: PushSigner, fetch: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tidings.push, "CERT_CACHE_TTL_SECONDS", 0.0)
    assert check(signed(signer), fetch)
    assert check(signed(signer), fetch)
    assert fetch.calls == [CERT_URL, CERT_URL]


def test_clear_certificate_cache(signer: PushSigner, fetch: Fetcher) -> None:
    assert check(signed(signer), fetch)
    clear_certificate_cache()
    assert check(signed(signer), fetch)
    assert len(fetch.calls) == 2


# --- never raises ------------------------------------------------------------------


header_names = st.sampled_from(
    ["Date", "Authorization", "x-mns-signing-cert-url", "Content-MD5", "Content-Type", "x-mns-a"]
)


@given(
    st.dictionaries(header_names | st.text(max_size=10), st.text(max_size=60), max_size=8),
    st.binary(max_size=64),
    st.text(max_size=20),
)
def test_arbitrary_input_gives_a_boolean(headers: dict[str, str], body: bytes, path: str) -> None:
    def fetcher(url: str) -> bytes:
        return b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"

    assert verify(headers, body, path, fetch=fetcher) is False


# --- a real endpoint ---------------------------------------------------------------


def test_real_http_endpoint_with_the_default_fetcher(tmp_path: Path, signer: PushSigner) -> None:
    results: list[bool] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # serves the certificate
            self.send_response(200)
            self.send_header("Content-Type", "application/x-pem-file")
            self.end_headers()
            self.wfile.write(signer.certificate_pem)

        def do_POST(self) -> None:  # the user's endpoint
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = verify(
                dict(self.headers.items()),
                body,
                self.path,
                allowed_cert_url_prefixes=[f"http://127.0.0.1:{port}/"],
            )
            results.append(ok)
            self.send_response(204 if ok else 403)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = serve_http(Handler)
    port = server.server_address[1]
    try:
        date = email.utils.formatdate(usegmt=True)
        cert_url = f"http://127.0.0.1:{port}/push-cert.pem"
        statuses = []
        for path, body in [("/hook?x=1", BODY), ("/hook?x=1", BODY), ("/hook?x=2", BODY)]:
            headers = push_headers(
                BODY, "text/xml;charset=utf-8", cert_url, signer, "/hook?x=1", EXTRA, date, "r1"
            )
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("POST", path, body=body, headers=headers)
            statuses.append(connection.getresponse().status)
            connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert statuses == [204, 204, 403]
    assert results == [True, True, False]


@given(
    st.dictionaries(header_names, st.text(max_size=60), max_size=6),
    st.binary(max_size=64),
    st.text(max_size=20),
)
def test_checks_handle_garbage_without_the_last_resort_catch(
    headers: dict[str, str], body: bytes, path: str
) -> None:
    # The catch-all in verify() is a safety net; ordinary garbage must not need it.
    def fetcher(url: str) -> bytes:
        return b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"

    assert tidings.push._verify(headers, body, path, 900.0, None, fetcher, NOW) is False


@pytest.mark.parametrize(
    "fetcher",
    [
        Fetcher({}),
        Fetcher({CERT_URL: b"not a certificate"}),
        Fetcher({CERT_URL: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
    ],
)
def test_bad_certificates_need_no_last_resort_catch(signer: PushSigner, fetcher: Fetcher) -> None:
    lower = {n.lower(): v for n, v in signed(signer).items()}
    assert tidings.push._verify(lower, BODY, PATH, 900.0, None, fetcher, NOW) is False


SIGNED_NAMES = sorted(
    {"Date", "Content-Type", "Content-MD5", "x-mns-version", "x-mns-request-id", *EXTRA}
)


@given(name=st.sampled_from(SIGNED_NAMES), value=st.text(max_size=40) | st.none())
def test_any_change_to_a_signed_header_is_refused(
    signer: PushSigner, name: str, value: str | None
) -> None:
    clear_certificate_cache()
    headers = signed(signer)
    fetcher = Fetcher({CERT_URL: signer.certificate_pem})
    original = headers[name]
    if value is None:
        del headers[name]
    else:
        headers[name] = value
    assert check(headers, fetcher) is (value == original)
