"""Upload callbacks (spec 10) against a real `tidings serve`, with the official SDKs.

A loopback application server (http.server on 127.0.0.1) receives the callbacks; its
answer depends on the path. Signatures are checked the way the documented application
servers do: fetch the PEM public key from the URL in `x-oss-pub-key-url`, then verify
RSA-MD5 over the url-decoded path, the query, a newline and the body.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from mns.account import Account
from oss2.models import PartInfo

from tests.http_support import serve_http
from tests.integration.control_plane_support import client_for
from tests.integration.oss2_support import bucket_handle, crc64, error_of, md5_b64, md5_hex
from tests.integration.test_events_e2e import EventQueue, Rules, atom, decoded_status
from tests.integration.test_oss_presign_post import post, v1_form
from tests.support import ServerProcess

OK_BODY = b'{"Status": "OK",  "verbatim": [1, 2]}'  # odd spacing: relayed byte for byte
SLOW_SECONDS = 2.0
TIMEOUT = 10


class Receiver:
    """The application server: records every callback and answers by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver.lock:
                    receiver.received.append((self.path, headers, body))
                status, content_type, answer = 200, "application/json", OK_BODY
                if self.path.startswith("/error"):
                    status = 500
                elif self.path.startswith("/text"):
                    content_type, answer = "text/plain", b"OK"
                elif self.path.startswith("/slow"):
                    time.sleep(SLOW_SECONDS)
                # A client that gave up (the timeout test) has closed the connection.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = serve_http(Handler)  # daemon threads: a /slow answer holds up nothing
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self) -> list[tuple[str, dict[str, str], bytes]]:
        """The callbacks received since the last call."""
        with self.lock:
            taken, self.received = self.received, []
        return taken


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    yield state
    state.server.shutdown()
    state.server.server_close()


@pytest.fixture(autouse=True)
def _fresh(receiver: Receiver) -> None:
    receiver.take()


def callback(url: str, body: str, **extra: Any) -> str:
    return base64.b64encode(
        json.dumps({"callbackUrl": url, "callbackBody": body, **extra}).encode()
    ).decode()


def callback_var(**variables: str) -> str:
    return base64.b64encode(json.dumps(variables).encode()).decode()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/dead"


def verified(headers: dict[str, str], target: str, body: bytes) -> bool:
    """Check a callback's signature as an application server does."""
    key_url = base64.b64decode(headers["x-oss-pub-key-url"]).decode()
    with urllib.request.urlopen(key_url, timeout=TIMEOUT) as response:
        public = serialization.load_pem_public_key(response.read())
    assert isinstance(public, rsa.RSAPublicKey)
    path, sep, query = target.partition("?")
    signed = unquote(path).encode() + (f"?{query}".encode() if sep else b"") + b"\n" + body
    public.verify(
        base64.b64decode(headers["authorization"]), signed, padding.PKCS1v15(), hashes.MD5()
    )
    return True


def error_code(body: bytes) -> tuple[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "Error"
    return root.findtext("Code") or "", root.findtext("Message") or ""


FORM_TEMPLATE = (
    "bucket=${bucket}&object=${object}&etag=${etag}&size=${size}&mimeType=${mimeType}"
    "&crc64=${crc64}&contentMd5=${contentMd5}&clientIp=${clientIp}&reqId=${reqId}"
    "&operation=${operation}&height=${imageInfo.height}&my_var=${x:my_var}&none=${nope}"
)


def test_oss2_put_form_body(oss2_bucket: oss2.Bucket, receiver: Receiver) -> None:
    """oss2 put_object with x-oss-callback and x-oss-callback-var: the callback gets the
    url-encoded variables, signed with the key served by Tidings; the client gets the
    callback's JSON verbatim with the operation's headers; the object is stored."""
    data = b"callback body"
    key = "uploads/a cat+dog.txt"
    result = oss2_bucket.put_object(
        key,
        data,
        headers={
            "Content-Type": "text/plain",
            "x-oss-callback": callback(f"{receiver.base}/ok/cb%20x?from=oss", FORM_TEMPLATE),
            "x-oss-callback-var": callback_var(**{"x:my_var": "v a/l&ü"}),
        },
    )
    assert result.status == 200
    assert result.resp.read() == OK_BODY
    assert result.headers["Content-Type"] == "application/json"
    assert result.etag == md5_hex(data)
    assert result.crc == crc64(data)
    [(target, headers, body)] = receiver.take()
    assert target == "/ok/cb%20x?from=oss"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert verified(headers, target, body)
    assert {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()} == {
        "bucket": oss2_bucket.bucket_name,
        "object": key,
        "etag": md5_hex(data),
        "size": str(len(data)),
        "mimeType": "text/plain",
        "crc64": str(crc64(data)),
        "contentMd5": md5_b64(data),
        "clientIp": "127.0.0.1",
        "reqId": result.request_id,
        "operation": "PutObject",
        "height": "",
        "my_var": "v a/l&ü",
        "none": "",
    }
    assert oss2_bucket.get_object(key).read() == data


def test_v2_put_json_body(
    oss_v2_client: oss.Client, oss2_bucket: oss2.Bucket, receiver: Receiver
) -> None:
    """The v2 SDK's PutObjectRequest(callback=, callback_var=) with a JSON body: values
    become JSON values (size a number), `callbackHost` is the Host; the SDK stores the
    answer as callback_result."""
    template = '{"object":${object},"size":${size},"mimeType":${mimeType},"v":${x:my_var}}'
    result = oss_v2_client.put_object(
        oss.PutObjectRequest(
            bucket=oss2_bucket.bucket_name,
            key='k "quoted".json',
            body=b"{}",
            content_type="application/json",
            callback=callback(
                f"{receiver.base}/ok",
                template,
                callbackBodyType="application/json",
                callbackHost="app.example.com",
            ),
            callback_var=callback_var(**{"x:my_var": 'say "hi"'}),
        )
    )
    assert result.status_code == 200
    assert result.callback_result == OK_BODY.decode()
    assert result.hash_crc64 == str(crc64(b"{}"))
    [(target, headers, body)] = receiver.take()
    assert headers["host"] == "app.example.com"
    assert headers["content-type"] == "application/json"
    assert verified(headers, target, body)
    assert json.loads(body) == {
        "object": 'k "quoted".json',
        "size": 2,
        "mimeType": "application/json",
        "v": 'say "hi"',
    }


def test_first_url_failing_then_the_next(oss2_bucket: oss2.Bucket, receiver: Receiver) -> None:
    """callbackUrl lists several URLs: each is tried in order until one succeeds."""
    urls = f"{dead_url()};{receiver.base}/error;{receiver.base}/ok/third"
    result = oss2_bucket.put_object(
        "k", b"x", headers={"x-oss-callback": callback(urls, "o=${object}")}
    )
    assert result.status == 200
    assert result.resp.read() == OK_BODY
    assert [target for target, _, _ in receiver.take()] == ["/error", "/ok/third"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/error", "Error status : 500."),
        ("/text", "Response body is not valid json format."),
        (None, "Error status : -1. Cannot reach the callback server"),
    ],
)
def test_failures_answer_203_and_keep_the_object(
    oss2_bucket: oss2.Bucket, receiver: Receiver, path: str | None, message: str
) -> None:
    """A failed callback: 203 with a CallbackFailed document, the operation's headers,
    and the object stored; oss2 treats it as success."""
    url = f"{receiver.base}{path}" if path else dead_url()
    result = oss2_bucket.put_object(
        "kept", b"data", headers={"x-oss-callback": callback(url, "o=${object}")}
    )
    assert result.status == 203
    assert result.headers["Content-Type"] == "application/xml"
    assert result.etag == md5_hex(b"data")
    assert result.crc == crc64(b"data")
    code, text = error_code(result.resp.read())
    assert code == "CallbackFailed"
    assert text.startswith(message)
    assert oss2_bucket.get_object("kept").read() == b"data"


def test_v2_sees_203_as_success(
    oss_v2_client: oss.Client, oss2_bucket: oss2.Bucket, receiver: Receiver
) -> None:
    result = oss_v2_client.put_object(
        oss.PutObjectRequest(
            bucket=oss2_bucket.bucket_name,
            key="v2-kept",
            body=b"data",
            callback=callback(f"{receiver.base}/text", "o=${object}"),
        )
    )
    assert result.status_code == 203
    assert result.etag == f'"{md5_hex(b"data")}"'
    assert error_code(result.callback_result.encode())[0] == "CallbackFailed"


@pytest.mark.parametrize(
    "value",
    [
        "not base64",
        base64.b64encode(b'{"callbackUrl": "http://a/"}').decode(),
        callback("ftp://a/", "x"),
    ],
)
def test_invalid_callback_stores_nothing(
    oss2_bucket: oss2.Bucket, receiver: Receiver, value: str
) -> None:
    error = error_of(oss2_bucket.put_object, "never", b"x", headers={"x-oss-callback": value})
    assert (error.status, error.code) == (400, "InvalidArgument")
    assert not oss2_bucket.object_exists("never")
    assert receiver.take() == []


def test_presigned_put_with_callback_parameter(
    oss2_bucket: oss2.Bucket, receiver: Receiver
) -> None:
    """A presigned URL carries the callback as the `callback` query parameter."""
    params = {"callback": callback(f"{receiver.base}/ok", "o=${object}&op=${operation}")}
    url = oss2_bucket.sign_url("PUT", "signed.txt", 60, params=params)
    response = requests.put(url, data=b"signed", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.content == OK_BODY
    [(_, _, body)] = receiver.take()
    assert body == b"o=signed.txt&op=PutObject"
    bad = oss2_bucket.sign_url("PUT", "signed-bad.txt", 60, params={"callback": "e30="})
    response = requests.put(bad, data=b"signed", timeout=TIMEOUT)
    assert response.status_code == 400
    assert not oss2_bucket.object_exists("signed-bad.txt")


def test_post_object_with_callback_field(
    server: ServerProcess, oss2_bucket: oss2.Bucket, receiver: Receiver
) -> None:
    """PostObject: the `callback` form field and `x:` fields; the callback's answer
    replaces the success_action_status body."""
    fields = v1_form(
        [{"bucket": oss2_bucket.bucket_name}],
        key="posted/${filename}",
        success_action_status="201",
        callback=callback(f"{receiver.base}/ok", "o=${object}&op=${operation}&v=${x:my_var}"),
        **{"x:my_var": "form value"},
    )
    response = post(server, oss2_bucket.bucket_name, fields, b"posted", filename="f.txt")
    assert response.status_code == 200, response.text
    assert response.content == OK_BODY
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["ETag"] == f'"{md5_hex(b"posted")}"'
    [(target, headers, body)] = receiver.take()
    assert verified(headers, target, body)
    assert body == b"o=posted%2Ff.txt&op=PostObject&v=form%20value"

    failing = {**fields, "callback": callback(f"{receiver.base}/error", "x=1")}
    response = post(server, oss2_bucket.bucket_name, failing, b"again", filename="g.txt")
    assert response.status_code == 203
    assert error_code(response.content)[0] == "CallbackFailed"
    assert oss2_bucket.get_object("posted/g.txt").read() == b"again"

    invalid = {**fields, "callback": "not base64"}
    response = post(server, oss2_bucket.bucket_name, invalid, b"no", filename="h.txt")
    assert response.status_code == 400
    assert not oss2_bucket.object_exists("posted/h.txt")


def _parts(bucket: oss2.Bucket, key: str, upload_id: str, data: list[bytes]) -> list[PartInfo]:
    parts = []
    for number, chunk in enumerate(data, 1):
        result = bucket.upload_part(key, upload_id, number, chunk)
        parts.append(PartInfo(number, result.etag, size=len(chunk), part_crc=result.crc))
    return parts


def test_complete_multipart_with_callback(
    oss2_bucket: oss2.Bucket, oss_v2_client: oss.Client, receiver: Receiver
) -> None:
    """CompleteMultipartUpload: ${size} is the whole object's; an invalid callback leaves
    the upload open; oss2 (headers) and the v2 SDK (callback=) both get the answer."""
    data = [b"a" * 100 * 1024, b"tail"]
    key = "mp/object.bin"
    upload_id = oss2_bucket.init_multipart_upload(key).upload_id
    parts = _parts(oss2_bucket, key, upload_id, data)
    error = error_of(
        oss2_bucket.complete_multipart_upload,
        key,
        upload_id,
        parts,
        headers={"x-oss-callback": "%%%"},
    )
    assert (error.status, error.code) == (400, "InvalidArgument")
    assert not oss2_bucket.object_exists(key)
    template = "size=${size}&op=${operation}&etag=${etag}&md5=${contentMd5}"
    result = oss2_bucket.complete_multipart_upload(
        key, upload_id, parts, headers={"x-oss-callback": callback(f"{receiver.base}/ok", template)}
    )
    assert result.status == 200
    assert result.resp.read() == OK_BODY
    assert result.crc == crc64(b"".join(data))
    [(target, headers, body)] = receiver.take()
    assert verified(headers, target, body)
    fields = parse_qs(body.decode(), keep_blank_values=True)
    assert fields["size"] == [str(100 * 1024 + 4)]
    assert fields["op"] == ["CompleteMultipartUpload"]
    assert fields["etag"] == [result.etag]
    assert fields["md5"] == [""]

    init = oss_v2_client.initiate_multipart_upload(
        oss.InitiateMultipartUploadRequest(bucket=oss2_bucket.bucket_name, key="mp/v2")
    )
    part = oss_v2_client.upload_part(
        oss.UploadPartRequest(
            bucket=oss2_bucket.bucket_name,
            key="mp/v2",
            upload_id=init.upload_id,
            part_number=1,
            body=b"only part",
        )
    )
    done = oss_v2_client.complete_multipart_upload(
        oss.CompleteMultipartUploadRequest(
            bucket=oss2_bucket.bucket_name,
            key="mp/v2",
            upload_id=init.upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(
                parts=[oss.UploadPart(part_number=1, etag=part.etag)]
            ),
            callback=callback(
                f"{receiver.base}/ok", '{"k":${object}}', callbackBodyType="application/json"
            ),
        )
    )
    assert done.status_code == 200
    assert done.callback_result == OK_BODY.decode()
    assert done.hash_crc64 == str(crc64(b"only part"))
    [(_, _, body)] = receiver.take()
    assert json.loads(body) == {"k": "mp/v2"}


def test_public_key_is_served_and_cannot_shadow_a_bucket(
    server: ServerProcess, oss2_bucket: oss2.Bucket
) -> None:
    """GET /_tidings/callback-pub-key.pem serves the PEM key, unauthenticated; under a
    virtual-hosted bucket's Host the same path is an object of that bucket."""
    response = requests.get(f"{server.oss_url}/_tidings/callback-pub-key.pem", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    oss2_bucket.put_object("_tidings/callback-pub-key.pem", b"an object")
    port = server.oss_url.rsplit(":", 1)[1]
    response = requests.get(
        f"{server.oss_url}/_tidings/callback-pub-key.pem",
        headers={"Host": f"{oss2_bucket.bucket_name}.localhost:{port}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403  # the object exists; the request is unsigned
    assert error_code(response.content)[0] == "AccessDenied"


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose callbacks give up after one second, for the timeout test."""
    data_dir: Path = tmp_path_factory.mktemp("quick-callbacks")
    (data_dir / "tidings.toml").write_text("[server]\nupload_callback_timeout = 1.0\n")
    process = ServerProcess(data_dir).start()
    yield process
    process.stop()


def test_timeout_answers_203(quick_server: ServerProcess, receiver: Receiver) -> None:
    """A callback server slower than the deadline: 203 CallbackFailed, object stored."""
    bucket = bucket_handle(quick_server, f"b-{uuid.uuid4().hex[:16]}")
    bucket.create_bucket()
    started = time.monotonic()
    result = bucket.put_object(
        "slow", b"x", headers={"x-oss-callback": callback(f"{receiver.base}/slow", "a=1")}
    )
    assert time.monotonic() - started < SLOW_SECONDS
    assert result.status == 203
    assert error_code(result.resp.read()) == (
        "CallbackFailed",
        "Error status : -1. No answer within 1 s.",
    )
    assert bucket.get_object("slow").read() == b"x"


def test_events_carry_the_callback_variables_either_way(
    server: ServerProcess, account: Account, queue_name: str, oss2_bucket: oss2.Bucket,
    receiver: Receiver,
) -> None:  # fmt: skip
    """The upload's event is committed whatever the callback does (spec 10.4): after a
    successful and after a failed callback, each carries the custom variables as xVars,
    and both responses carry x-oss-event-status."""
    rules = Rules(client_for(server))
    queue = EventQueue(account, queue_name)
    try:
        rule = rules.create(
            f"cb-{uuid.uuid4().hex[:10]}",
            ["ObjectCreated:PutObject"],
            [[atom(prefix=f"{oss2_bucket.bucket_name}/")]],
            queue=queue.name,
        )
        variables = {"x:my_var": "traced"}
        answers = []
        for path in ("/ok", "/error"):
            answers.append(
                oss2_bucket.put_object(
                    f"evented{path}",
                    b"e",
                    headers={
                        "x-oss-callback": callback(f"{receiver.base}{path}", "a=${x:my_var}"),
                        "x-oss-callback-var": callback_var(**variables),
                    },
                )
            )
        assert [answer.status for answer in answers] == [200, 203]
        for answer in answers:
            assert decoded_status(answer.headers) == {"Result": "Ok"}
            record = queue.next()
            assert record["responseElements"]["requestId"] == answer.request_id
            assert record["oss"]["ruleId"] == rule
            assert record["xVars"] == variables
    finally:
        rules.cleanup()
        queue.delete()
