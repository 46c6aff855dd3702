"""Request authentication against a real `tidings serve`, over raw HTTP.

Requests are written byte for byte on a socket and signed by a small helper written
from spec section 3 (not by `tidings.auth`); responses are read with `http.client`,
whose `getheaders()` keeps the header names as they were on the wire. Every refusal
must come back with its documented status and a complete `Error` document whose
`RequestId` equals the lower-case `x-mns-request-id` header.

The helpers here (`MnsClient`, `Reply`, ...) are shared with test_mns_hostile_input.py.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import hmac
import http.client
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import QueueMeta

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

API_VERSION = "2015-06-06"
NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"
CONTENT_TYPE = "text/xml;charset=UTF-8"
ERROR_CHILDREN = ("Code", "Message", "RequestId", "HostId")
REQUEST_ID_HEADER = "x-mns-request-id"
TIMEOUT_SECONDS = 30.0


# -- signing (spec section 3) -------------------------------------------------------------


def http_date(offset_seconds: float = 0.0) -> str:
    """RFC 1123 date in GMT, `offset_seconds` away from now."""
    return email.utils.formatdate(time.time() + offset_seconds, usegmt=True)


def sdk_content_md5(body: bytes) -> str:
    """Content-MD5 as the SDK computes it: Base64 of the lower-case hex digest (3.4)."""
    return base64.b64encode(hashlib.md5(body).hexdigest().encode("ascii")).decode("ascii")


def signature(secret: str, method: str, headers: Mapping[str, str], resource: bytes) -> str:
    """Base64(HMAC-SHA1(secret, StringToSign)) over the raw request target (3.2, 3.3)."""
    lower = {name.lower(): value for name, value in headers.items()}
    canonical = "".join(
        f"{name}:{lower[name]}\n" for name in sorted(n for n in lower if n.startswith("x-mns-"))
    )
    head = (
        f"{method}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n"
        f"{lower.get('date', '')}\n{canonical}"
    )
    digest = hmac.new(secret.encode(), head.encode() + resource, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# -- replies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A response as it came off the wire."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value, looked up case-insensitively."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def root(self) -> ElementTree.Element:
        """The body's root element."""
        return ElementTree.fromstring(self.body)

    def values(self) -> dict[str, str]:
        """The root's children by local name, with their text."""
        return {child.tag.rpartition("}")[2]: child.text or "" for child in self.root()}

    @property
    def code(self) -> str:
        """The error code of an Error document."""
        return self.values()["Code"]


def assert_request_id_header(reply: Reply) -> str:
    """The request id header is present exactly once, spelled in lower case on the wire."""
    spellings = [name for name, _ in reply.headers if name.lower() == REQUEST_ID_HEADER]
    assert spellings == [REQUEST_ID_HEADER], reply.headers
    value = reply.header(REQUEST_ID_HEADER)
    assert value
    return value


def assert_error(reply: Reply, status: int, code: str) -> dict[str, str]:
    """`reply` is a well-formed Error document with all four children; returns them."""
    assert reply.status == status, (reply.status, reply.body)
    request_id = assert_request_id_header(reply)
    assert reply.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = reply.root()
    assert root.tag == f"{{{NAMESPACE}}}Error"
    values = reply.values()
    assert set(ERROR_CHILDREN) <= set(values), values
    assert values["Code"] == code, values
    assert values["Message"]
    assert values["RequestId"] == request_id
    assert values["HostId"]
    assert (reply.header("content-type") or "").startswith("text/xml")
    return values


# -- the client ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MnsClient:
    """Writes MNS requests on a fresh connection each, signed unless told otherwise."""

    base_url: str
    key_id: str = ACCESS_KEY_ID
    secret: str = ACCESS_KEY_SECRET

    @property
    def address(self) -> tuple[str, int]:
        """Host and port of the listener."""
        parts = urlsplit(self.base_url)
        assert parts.hostname is not None and parts.port is not None
        return parts.hostname, parts.port

    def headers_for(
        self, method: str, target: bytes, body: bytes, extra: Mapping[str, str | None], sign: bool
    ) -> dict[str, str]:
        """Default SDK-like headers, `extra` applied (None removes one), then signed."""
        headers: dict[str, str | None] = {
            "Host": urlsplit(self.base_url).netloc,
            "date": http_date(),
            "x-mns-version": API_VERSION,
        }
        if body:
            headers["content-type"] = CONTENT_TYPE
            headers["content-md5"] = sdk_content_md5(body)
        headers.update(extra)
        final = {name: value for name, value in headers.items() if value is not None}
        if sign and not any(name.lower() == "authorization" for name in final):
            final["Authorization"] = (
                f"MNS {self.key_id}:{signature(self.secret, method, final, target)}"
            )
        return final

    def request(
        self,
        method: str,
        target: str | bytes,
        body: bytes = b"",
        *,
        headers: Mapping[str, str | None] | None = None,
        sign: bool = True,
        chunked: bool = False,
        sign_target: str | bytes | None = None,
    ) -> Reply:
        """Send one request; `sign_target` signs a different target than the one sent."""
        raw_target = target.encode("latin-1") if isinstance(target, str) else target
        signed_target = raw_target if sign_target is None else sign_target
        if isinstance(signed_target, str):
            signed_target = signed_target.encode("latin-1")
        final = self.headers_for(method, signed_target, body, headers or {}, sign)
        if chunked:
            final["Transfer-Encoding"] = "chunked"
        else:
            final.setdefault("Content-Length", str(len(body)))
        head = b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), raw_target)
        head += b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in final.items()) + b"\r\n"
        payload = chunk_encode(body) if chunked else body
        return self.exchange(head + payload, method)

    def exchange(self, raw: bytes, method: str) -> Reply:
        """Write `raw` and read one response with http.client."""
        with socket.create_connection(self.address, timeout=TIMEOUT_SECONDS) as sock:
            # The server may answer early (body too large); then read what it said.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(raw)
            response = http.client.HTTPResponse(sock, method=method)
            response.begin()
            try:
                return Reply(response.status, response.getheaders(), response.read())
            finally:
                response.close()

    # Small conveniences for the common operations.

    def create_queue(self, name: str, body: bytes = b"") -> Reply:
        """CreateQueue."""
        return self.request("PUT", f"/queues/{name}", body)

    def delete_queue(self, name: str) -> Reply:
        """DeleteQueue."""
        return self.request("DELETE", f"/queues/{name}")

    def queue_attributes(self, name: str) -> Reply:
        """GetQueueAttributes."""
        return self.request("GET", f"/queues/{name}")

    def send(self, name: str, body: str) -> Reply:
        """SendMessage of a plain-text body."""
        return self.request("POST", f"/queues/{name}/messages", message_xml(body))

    def receive(self, name: str) -> Reply:
        """ReceiveMessage without waiting."""
        return self.request("GET", f"/queues/{name}/messages?waitseconds=0")

    def health(self) -> Reply:
        """GET /health, unsigned."""
        return self.request("GET", "/health", sign=False)


def chunk_encode(body: bytes, size: int = 64 * 1024) -> bytes:
    """`body` in chunked transfer-coding."""
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return encoded + b"0\r\n\r\n"


def message_xml(body: str) -> bytes:
    """A SendMessage body as the SDK writes it."""
    escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Message xmlns="{NAMESPACE}">'
        f"<MessageBody>{escaped}</MessageBody></Message>"
    ).encode()


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def client(server: ServerProcess) -> MnsClient:
    """A raw client with the server's credentials."""
    return MnsClient(server.mns_url)


@pytest.fixture
def queue(client: MnsClient, queue_name: str) -> Iterator[str]:
    """A queue created for this test (deleted afterwards)."""
    assert client.create_queue(queue_name).status == 201
    yield queue_name
    client.delete_queue(queue_name)


# -- refusals -----------------------------------------------------------------------------


def test_missing_authorization(client: MnsClient, queue: str) -> None:
    reply = client.request("GET", f"/queues/{queue}", sign=False)
    assert_error(reply, 400, "MissingAuthorizationHeader")


@pytest.mark.parametrize(
    "authorization",
    [
        "MNS abc",
        "Bearer x:y",
        "MNS",
        f"MNS {ACCESS_KEY_ID}:",
        f"mns {ACCESS_KEY_ID}:c2lnbmF0dXJl",
        "MNS4-HMAC-SHA256 Credential=test-key/20240307/cn-hangzhou/mns/aliyun_v4_request",
    ],
)
def test_malformed_authorization(client: MnsClient, queue: str, authorization: str) -> None:
    reply = client.request("GET", f"/queues/{queue}", headers={"Authorization": authorization})
    assert_error(reply, 400, "InvalidAuthorizationHeader")


def test_unknown_access_key(server: ServerProcess, queue: str) -> None:
    stranger = MnsClient(server.mns_url, key_id="no-such-key")
    assert_error(stranger.queue_attributes(queue), 403, "InvalidAccessKeyId")


def test_wrong_secret(server: ServerProcess, queue: str) -> None:
    impostor = MnsClient(server.mns_url, secret="not-the-secret")
    assert_error(impostor.queue_attributes(queue), 403, "SignatureDoesNotMatch")


def test_signature_over_another_target_does_not_match(client: MnsClient, queue: str) -> None:
    reply = client.request("GET", f"/queues/{queue}", sign_target=f"/queues/{queue}-other")
    assert_error(reply, 403, "SignatureDoesNotMatch")


def test_signature_over_the_decoded_target_does_not_match(client: MnsClient, queue: str) -> None:
    """The canonical resource is the raw target: signing the decoded form must fail."""
    reply = client.request(
        "GET", f"/queues/{queue}?tag=%41%2B", sign_target=f"/queues/{queue}?tag=A+"
    )
    assert_error(reply, 403, "SignatureDoesNotMatch")


def test_signed_user_request_id_cannot_be_swapped(client: MnsClient, queue: str) -> None:
    headers = client.headers_for(
        "GET", f"/queues/{queue}".encode(), b"", {"x-mns-user-request-id": "mine"}, True
    )
    headers["x-mns-user-request-id"] = "someone-else"
    reply = client.request("GET", f"/queues/{queue}", headers=headers)
    assert_error(reply, 403, "SignatureDoesNotMatch")


def test_missing_date(client: MnsClient, queue: str) -> None:
    reply = client.request("GET", f"/queues/{queue}", headers={"date": None})
    assert_error(reply, 400, "MissingDateHeader")


@pytest.mark.parametrize("date", ["yesterday", "2024-03-07T18:49:58Z", "Thu, 07 Mar 2024"])
def test_unparsable_date(client: MnsClient, queue: str, date: str) -> None:
    reply = client.request("GET", f"/queues/{queue}", headers={"date": date})
    assert_error(reply, 400, "InvalidDateHeader")


def test_date_with_an_absurd_year(client: MnsClient, queue: str) -> None:
    reply = client.request(
        "GET", f"/queues/{queue}", headers={"date": "07 Feb 99999999999999999999 00:00"}
    )
    assert_error(reply, 400, "InvalidDateHeader")


@pytest.mark.parametrize("minutes", [16, -16])
def test_date_sixteen_minutes_off_is_expired(client: MnsClient, queue: str, minutes: int) -> None:
    reply = client.request("GET", f"/queues/{queue}", headers={"date": http_date(minutes * 60)})
    assert_error(reply, 408, "TimeExpired")


@pytest.mark.parametrize("minutes", [14, -14])
def test_date_fourteen_minutes_off_is_accepted(client: MnsClient, queue: str, minutes: int) -> None:
    reply = client.request("GET", f"/queues/{queue}", headers={"date": http_date(minutes * 60)})
    assert reply.status == 200, reply.body
    assert reply.values()["QueueName"] == queue


def test_missing_version_header(client: MnsClient, queue: str) -> None:
    reply = client.request("GET", f"/queues/{queue}", headers={"x-mns-version": None})
    assert_error(reply, 400, "MissingVersionHeader")


def test_content_md5_not_matching_the_body(client: MnsClient, queue: str) -> None:
    wrong = sdk_content_md5(b"a different body")
    reply = client.request(
        "POST", f"/queues/{queue}/messages", message_xml("hello"), headers={"content-md5": wrong}
    )
    assert_error(reply, 400, "InvalidDegist")
    assert client.queue_attributes(queue).values()["ActiveMessages"] == "0"


def test_rfc_1864_content_md5_is_accepted(client: MnsClient, queue: str) -> None:
    body = message_xml("hello")
    rfc_form = base64.b64encode(hashlib.md5(body).digest()).decode()
    reply = client.request(
        "POST", f"/queues/{queue}/messages", body, headers={"content-md5": rfc_form}
    )
    assert reply.status == 201, reply.body


def test_path_matching_no_operation(client: MnsClient) -> None:
    assert_error(client.request("GET", "/no/such/operation"), 400, "InvalidRequestURL")
    assert_error(client.request("POST", "/queues"), 400, "InvalidRequestURL")


def test_auth_is_checked_before_routing(server: ServerProcess) -> None:
    reply = MnsClient(server.mns_url).request("GET", "/no/such/operation", sign=False)
    assert_error(reply, 400, "MissingAuthorizationHeader")


def test_host_id_names_the_endpoint(client: MnsClient, server: ServerProcess) -> None:
    values = assert_error(client.request("GET", "/nowhere"), 400, "InvalidRequestURL")
    assert values["HostId"] == server.mns_url


def test_request_ids_are_unique(client: MnsClient, queue: str) -> None:
    ids = {
        assert_request_id_header(client.request("GET", f"/queues/{queue}", sign=False))
        for _ in range(5)
    }
    assert len(ids) == 5


# -- what must pass -----------------------------------------------------------------------


def test_raw_target_with_plus_and_slash_signs_correctly(client: MnsClient, queue: str) -> None:
    """'+' and '/' in the query are signed as sent and '+' stays a literal plus."""
    handle = "1-MTIzNDU2+/a=="
    reply = client.request("DELETE", f"/queues/{queue}/messages?ReceiptHandle={handle}")
    values = assert_error(reply, 400, "ReceiptHandleError")  # authenticated, then refused
    assert handle in values["Message"]


def test_unencoded_query_with_plus_and_slash_is_authenticated(
    client: MnsClient, queue: str
) -> None:
    reply = client.request("GET", f"/queues/{queue}?x=a+b/c==&y=%2F%2B")
    assert reply.status == 200, reply.body
    assert_request_id_header(reply)


def test_header_names_are_case_insensitive_on_the_way_in(client: MnsClient, queue: str) -> None:
    body = message_xml("hello")
    # Drop the lower-case defaults and send the same headers in other spellings.
    headers: dict[str, str | None] = dict.fromkeys(
        ["date", "x-mns-version", "content-type", "content-md5"]
    )
    headers.update(
        {
            "DATE": http_date(),
            "X-MNS-Version": API_VERSION,
            "X-Mns-User-Request-Id": "MixedCase-1",
            "Content-Type": CONTENT_TYPE,
            "Content-MD5": sdk_content_md5(body),
        }
    )
    reply = client.request("POST", f"/queues/{queue}/messages", body, headers=headers)
    assert reply.status == 201, reply.body


def test_security_token_is_ignored_by_the_signature(client: MnsClient, queue: str) -> None:
    headers = client.headers_for("GET", f"/queues/{queue}".encode(), b"", {}, True)
    headers["security-token"] = "added-after-signing"
    reply = client.request("GET", f"/queues/{queue}", headers=headers)
    assert reply.status == 200, reply.body


def test_success_responses_carry_the_lower_case_request_id(client: MnsClient, queue: str) -> None:
    for reply in (
        client.queue_attributes(queue),
        client.send(queue, "hello"),
        client.request("GET", f"/queues/{queue}/messages?peekonly=true"),
    ):
        assert 200 <= reply.status < 300, reply.body
        assert_request_id_header(reply)
        assert reply.header("x-mns-version") == API_VERSION


def test_health_needs_no_auth(client: MnsClient) -> None:
    reply = client.health()
    assert reply.status == 200
    assert reply.body == b"ok"
    assert_request_id_header(reply)


# -- the official SDK ---------------------------------------------------------------------


def test_sdk_surfaces_signature_mismatch(
    account: Account, server: ServerProcess, queue_name: str
) -> None:
    account.get_queue(queue_name).create(QueueMeta())
    try:
        impostor = Account(server.mns_url, ACCESS_KEY_ID, f"wrong-{uuid.uuid4().hex}")
        with pytest.raises(MNSServerException) as caught:
            impostor.get_queue(queue_name).get_attributes()
        assert caught.value.type == "SignatureDoesNotMatch"
        assert caught.value.request_id
        assert caught.value.host_id == server.mns_url
    finally:
        account.get_queue(queue_name).delete()
