"""Upload callbacks (spec 10), the pure parts: parsing the description, the body
template and its variables, the signature as an application server checks it, the
public-key URL, and the replies. The sender has its own file
(test_upload_callback_sender.py)."""

from __future__ import annotations

import base64
import json
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from tidings.api.http import Request
from tidings.api.oss.call import OssCall
from tidings.api.oss.callback import (
    COMPLETE_MULTIPART_UPLOAD,
    FORM_TYPE,
    JSON_TYPE,
    PUBLIC_KEY_PATH,
    PUT_OBJECT,
    CallbackReply,
    CallbackSpec,
    callback_headers,
    callback_variables,
    failed,
    parse_callback,
    public_key_url,
    render_body,
    requested_callback,
    response_failure,
    string_to_sign,
    succeeded,
    with_callback,
)
from tidings.api.oss.context import Reply
from tidings.auth.callback_key import KEY_FILE, CallbackSigner
from tidings.errors import ServiceError
from tidings.object_models import ObjectVersion
from tidings.services.object_events import Origin

ETAG = "5EB63BBBE01EEED093CB22BB8F5ACDC3"
KEY_URL = "http://127.0.0.1:9100" + PUBLIC_KEY_PATH


def encoded(config: dict[str, Any] | str) -> str:
    text = config if isinstance(config, str) else json.dumps(config)
    return base64.b64encode(text.encode()).decode()


def invalid(value: str, argument: str = "x-oss-callback") -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        parse_callback(value, argument)
    assert caught.value.code == "InvalidArgument"
    assert caught.value.details == {"ArgumentName": argument}
    return caught.value


def version(key: str = "uploads/cat.jpg", etag: str = ETAG, size: int = 48213) -> ObjectVersion:
    return ObjectVersion(
        seq=1, bucket_id=1, key=key, version_id="v1", is_current=True, is_delete_marker=False,
        blob_id="b", size=size, etag=etag, crc64=18446744073709551615, object_type="Normal",
        storage_class="Standard", acl="default", last_modified_ms=0,
        headers={"Content-Type": "image/jpeg"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> CallbackSigner:
    return CallbackSigner.load_or_create(tmp_path_factory.mktemp("callback"))


def app_server_verifies(
    public_pem: bytes, authorization: str, path_and_query: str, body: bytes
) -> bool:
    """What an application server does (the documented samples): url-decode the path,
    keep the query as received, append a newline and the body, check RSA-MD5."""
    path, sep, query = path_and_query.partition("?")
    signed = unquote(path).encode() + (f"?{query}".encode() if sep else b"") + b"\n" + body
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(base64.b64decode(authorization), signed, padding.PKCS1v15(), hashes.MD5())
    except InvalidSignature:
        return False
    return True


# -- parsing ---------------------------------------------------------------------------


def test_minimal_description_takes_the_defaults() -> None:
    spec = parse_callback(encoded({"callbackUrl": "http://a.example/cb", "callbackBody": "x"}))
    assert spec == CallbackSpec(("http://a.example/cb",), "x", FORM_TYPE, None, False)


def test_every_field() -> None:
    spec = parse_callback(
        encoded(
            {
                "callbackUrl": " http://a.example/cb?x=1 ;https://b.example:8443/p%20q;",
                "callbackHost": "app.example:8080",
                "callbackBody": '{"size":${size}}',
                "callbackBodyType": "Application/JSON; charset=utf-8",
                "callbackSNI": True,
                "somethingNew": 1,
            }
        )
    )
    assert spec is not None
    assert spec.urls == ("http://a.example/cb?x=1", "https://b.example:8443/p%20q")
    assert (spec.host, spec.body_type, spec.sni) == ("app.example:8080", JSON_TYPE, True)
    assert parse_callback(
        encoded({"callbackUrl": "http://a/", "callbackBody": "x", "callbackSNI": "false"})
    ) == CallbackSpec(("http://a/",), "x")


def test_absent_is_none() -> None:
    assert parse_callback(None) is None
    assert parse_callback("") is None


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        encoded("[1, 2]"),
        encoded({"callbackBody": "x"}),
        encoded({"callbackUrl": "", "callbackBody": "x"}),
        encoded({"callbackUrl": " ; ", "callbackBody": "x"}),
        encoded({"callbackUrl": ["http://a/"], "callbackBody": "x"}),
        encoded({"callbackUrl": "http://a/"}),
        encoded({"callbackUrl": "http://a/", "callbackBody": ""}),
        encoded({"callbackUrl": "http://a/", "callbackBody": 5}),
        encoded({"callbackUrl": ";".join(f"http://h{i}/" for i in range(6)), "callbackBody": "x"}),
        encoded({"callbackUrl": "ftp://a/", "callbackBody": "x"}),
        encoded({"callbackUrl": "a.example/cb", "callbackBody": "x"}),
        encoded({"callbackUrl": "http:///cb", "callbackBody": "x"}),
        encoded({"callbackUrl": "http://a/not encoded", "callbackBody": "x"}),
        encoded({"callbackUrl": "http://a/ü", "callbackBody": "x"}),
        encoded({"callbackUrl": "http://a/#frag", "callbackBody": "x"}),
        encoded({"callbackUrl": "http://a:99999/", "callbackBody": "x"}),
        encoded({"callbackUrl": "http://a:port/", "callbackBody": "x"}),
        encoded({"callbackUrl": "http://a/", "callbackBody": "x", "callbackBodyType": "text/xml"}),
        encoded({"callbackUrl": "http://a/", "callbackBody": "x", "callbackHost": "a\r\nX: y"}),
        encoded({"callbackUrl": "http://a/", "callbackBody": "x", "callbackHost": 7}),
        encoded({"callbackUrl": "http://a/", "callbackBody": "x", "callbackSNI": "yes"}),
    ],
)
def test_invalid_descriptions(value: str) -> None:
    invalid(value)


def test_the_error_names_the_argument() -> None:
    error = invalid("%%%", "callback")
    assert "Base64" in error.message


def test_five_urls_are_allowed() -> None:
    spec = parse_callback(
        encoded({"callbackUrl": ";".join(f"http://h{i}/" for i in range(5)), "callbackBody": "x"})
    )
    assert spec is not None and len(spec.urls) == 5


def _call(headers: dict[str, str], params: dict[str, str]) -> OssCall:
    request = Request("PUT", "/b/k", "/b/k", "", headers, "10.1.2.3")
    call = OssCall(request, None, "b", "k", params, list(params.items()), "RID", "h:1")  # type: ignore[arg-type]
    call.origin = Origin("RID", "10.1.2.3", "1111", {"x:my_var": "v a/l"})
    return call


def test_header_or_presigned_query_parameter() -> None:
    header = encoded({"callbackUrl": "http://header/", "callbackBody": "x"})
    query = encoded({"callbackUrl": "http://query/", "callbackBody": "x"})
    assert requested_callback(_call({"x-oss-callback": header}, {"callback": query})) == (
        CallbackSpec(("http://header/",), "x")
    )
    assert requested_callback(_call({}, {"callback": query})) == CallbackSpec(
        ("http://query/",), "x"
    )
    assert requested_callback(_call({}, {})) is None
    with pytest.raises(ServiceError) as caught:
        requested_callback(_call({}, {"callback": "***"}))
    assert caught.value.details == {"ArgumentName": "callback"}


# -- variables and bodies --------------------------------------------------------------


def test_system_and_custom_variables() -> None:
    values = callback_variables(
        "examplebucket", version(), PUT_OBJECT, "10.1.2.3", "RID", {"x:my_var": "v"}
    )
    assert values == {
        "bucket": "examplebucket",
        "object": "uploads/cat.jpg",
        "etag": ETAG,
        "size": 48213,
        "mimeType": "image/jpeg",
        "imageInfo.height": None,
        "imageInfo.width": None,
        "imageInfo.format": None,
        "crc64": "18446744073709551615",
        "contentMd5": base64.b64encode(bytes.fromhex(ETAG)).decode(),
        "vpcId": "",
        "clientIp": "10.1.2.3",
        "reqId": "RID",
        "operation": "PutObject",
        "x:my_var": "v",
    }


def test_a_multipart_etag_has_no_content_md5() -> None:
    values = callback_variables(
        "b", version(etag=f"{ETAG}-3"), COMPLETE_MULTIPART_UPLOAD, "ip", "r", {}
    )
    assert values["contentMd5"] == ""
    assert values["operation"] == "CompleteMultipartUpload"


VALUES: dict[str, Any] = {
    "bucket": "examplebucket",
    "object": "uploads/a cat+dog&ü.jpg",
    "size": 48213,
    "mimeType": "image/jpeg",
    "imageInfo.height": None,
    "x:my_var": 'say "hi"\\\n',
}


def test_form_body_url_encodes_each_value() -> None:
    body = render_body(
        "bucket=${bucket}&object=${object}&size=${size}&h=${imageInfo.height}&v=${x:my_var}"
        "&u=${unknown}&literal=$notavar",
        FORM_TYPE,
        VALUES,
    )
    assert body == (
        b"bucket=examplebucket&object=uploads%2Fa%20cat%2Bdog%26%C3%BC.jpg&size=48213&h="
        b"&v=say%20%22hi%22%5C%0A&u=&literal=$notavar"
    )
    assert parse_qs(body.decode(), keep_blank_values=True)["object"] == [VALUES["object"]]


def test_json_body_inserts_json_values() -> None:
    body = render_body(
        '{"mimeType":${mimeType},"size":${size},"object":${object},"h":${imageInfo.height},'
        '"v":${x:my_var},"u":${unknown}}',
        JSON_TYPE,
        VALUES,
    )
    assert json.loads(body) == {
        "mimeType": "image/jpeg",
        "size": 48213,
        "object": VALUES["object"],
        "h": "",
        "v": VALUES["x:my_var"],
        "u": "",
    }
    assert b'"size":48213' in body and "ü".encode() in body


def test_json_body_placeholders_inside_strings_stay_strings() -> None:
    body = render_body(
        '{"text":"${bucket}/${object} is ${size} bytes", "esc":"a\\"${size}", "v":"${x:my_var}"}',
        JSON_TYPE,
        VALUES,
    )
    assert json.loads(body) == {
        "text": f"examplebucket/{VALUES['object']} is 48213 bytes",
        "esc": 'a"48213',
        "v": VALUES["x:my_var"],
    }


@given(st.text(), st.text(), st.integers(min_value=0, max_value=2**53))
def test_json_bodies_stay_valid_json(name: str, value: str, size: int) -> None:
    values = {"object": name, "x:v": value, "size": size}
    body = render_body('{"a":${object},"b":"<${x:v}>","c":${size},"d":[${x:v}]}', JSON_TYPE, values)
    assert json.loads(body) == {"a": name, "b": f"<{value}>", "c": size, "d": [value]}


# -- the callback request and its signature --------------------------------------------


def test_string_to_sign() -> None:
    assert string_to_sign("http://h/cb%20x/%E4%BD%A0?a=%2F&b", b"body") == (
        "/cb x/你?a=%2F&b\nbody".encode()
    )
    assert string_to_sign("http://h:81", b"x=1") == b"/\nx=1"
    assert string_to_sign("https://h/p", b"") == b"/p\n"


def test_key_pair_is_created_once_and_kept(tmp_path: Path) -> None:
    first = CallbackSigner.load_or_create(tmp_path / "callback")
    assert stat.S_IMODE((tmp_path / "callback" / KEY_FILE).stat().st_mode) == 0o600
    again = CallbackSigner.load_or_create(tmp_path / "callback")
    assert again.public_key_pem == first.public_key_pem
    assert first.public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_signature_verifies_like_an_application_server(signer: CallbackSigner) -> None:
    url = "http://app.example:8080/cb%20in/%E4%BD%A0?from=oss&x=%2F"
    body = b"bucket=b&object=uploads%2Fcat.jpg"
    spec = CallbackSpec((url,), "unused", FORM_TYPE, "app.example")
    headers = callback_headers(spec, signer.sign(string_to_sign(url, body)), KEY_URL)
    assert headers["Content-Type"] == FORM_TYPE
    assert headers["Host"] == "app.example"
    assert base64.b64decode(headers["x-oss-pub-key-url"]).decode() == KEY_URL
    target = "/cb%20in/%E4%BD%A0?from=oss&x=%2F"  # what the server reads as its path
    auth = headers["authorization"]
    assert app_server_verifies(signer.public_key_pem, auth, target, body)
    assert not app_server_verifies(signer.public_key_pem, auth, target, body + b"&x=1")
    assert not app_server_verifies(signer.public_key_pem, auth, "/cb%20in/other", body)
    assert "Host" not in callback_headers(CallbackSpec((url,), "b"), auth, KEY_URL)


@pytest.mark.parametrize(
    ("host", "public", "expected"),
    [
        ("127.0.0.1:9100", None, "http://127.0.0.1:9100"),
        ("localhost:9100", None, "http://localhost:9100"),
        ("bucket-1.localhost:9100", None, "http://localhost:9100"),
        ("bucket-1.oss.example.com", None, "http://oss.example.com"),
        ("a.b.localhost:9100", None, "http://a.b.localhost:9100"),
        ("[::1]:9100", None, "http://[::1]:9100"),
        ("evil.example/x#", None, "http://localhost"),
        ("", None, "http://localhost"),
        ("127.0.0.1:9100", "https://oss.example.com/", "https://oss.example.com"),
    ],
)
def test_public_key_url(host: str, public: str | None, expected: str) -> None:
    domains = ("localhost", "oss.example.com")
    assert public_key_url(host, domains, public) == expected + PUBLIC_KEY_PATH


def test_response_failure() -> None:
    assert response_failure(200, b'{"Status":"OK"}') is None
    assert response_failure(200, b"[]") is None
    assert response_failure(500, b"{}") == "Error status : 500."
    assert response_failure(204, b"") == "Error status : 204."
    assert response_failure(200, b"OK") == "Response body is not valid json format."
    assert response_failure(200, b"") == "Response body is not valid json format."


# -- replies ---------------------------------------------------------------------------


OPERATION_HEADERS = [("ETag", f'"{ETAG}"'), ("x-oss-hash-crc64ecma", "1")]


def test_with_callback_keeps_the_ordinary_reply() -> None:
    call = _call({}, {})
    reply = Reply(200, [*OPERATION_HEADERS, ("Content-Type", "application/xml")], b"<x/>")
    assert with_callback(call, None, reply, "b", version(), PUT_OBJECT) is reply
    spec = CallbackSpec(("http://a/",), "o=${object}&v=${x:my_var}&ip=${clientIp}")
    pending = with_callback(call, spec, reply, "b", version(), PUT_OBJECT)
    assert isinstance(pending, CallbackReply) and pending.pending is not None
    assert (pending.status, pending.headers, pending.body) == (200, reply.headers, b"<x/>")
    assert pending.pending.body == b"o=uploads%2Fcat.jpg&v=v%20a%2Fl&ip=10.1.2.3"
    assert (pending.pending.host, pending.pending.request_id) == ("h:1", "RID")


def test_success_and_failure_replies() -> None:
    call = _call({}, {})
    spec = CallbackSpec(("http://a/",), "x")
    reply = Reply(200, [*OPERATION_HEADERS, ("Content-Type", "application/xml")], b"<x/>")
    pending = with_callback(call, spec, reply, "b", version(), PUT_OBJECT)
    assert isinstance(pending, CallbackReply) and pending.pending is not None
    ok = succeeded(pending, b'{"a":1}')
    assert (ok.status, ok.body) == (200, b'{"a":1}')
    assert ok.headers == [*OPERATION_HEADERS, ("Content-Type", "application/json")]
    bad = failed(pending, pending.pending, "Error status : 500.")
    assert bad.status == 203
    assert bad.headers == [*OPERATION_HEADERS, ("Content-Type", "application/xml")]
    root = ET.fromstring(bad.body)
    assert root.tag == "Error"
    assert root.findtext("Code") == "CallbackFailed"
    assert root.findtext("Message") == "Error status : 500."
    assert root.findtext("RequestId") == "RID"
