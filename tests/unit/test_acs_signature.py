"""Alibaba Cloud OpenAPI signatures (`tidings.auth.acs`), checked against the official
`alibabacloud-mns-open20220119` SDK's own signer.

Requests are produced by the real SDK client (`alibabacloud_tea_openapi` builds the
headers, flattens `Tag.N.*`, JSON-encodes objects, form-encodes CreateTopic's body and
signs): only the network call is replaced, by a stub that records the request. The
recorded request is turned into what a server sees (URL-encoded by the SDK's own
`compose_url`, then decoded by the control plane's parser) and verified. Each scheme is
then tampered with field by field.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import pytest
from alibabacloud_mns_open20220119 import models as m
from alibabacloud_mns_open20220119.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.core import DaraCore
from darabonba.response import DaraResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidings.api.control.params import parse_form
from tidings.auth import acs
from tidings.auth.keys import AccessKey, KeyRing
from tidings.errors import ServiceError

KEY = AccessKey("test-key", "test-secret", "1111222233334444")
KEYS = KeyRing([KEY])
ENDPOINT = "127.0.0.1:9101"
SKEW = acs.MAX_CLOCK_SKEW_SECONDS


@dataclass(frozen=True)
class Wire:
    """A request as the server receives it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def verify(self, now: float | None = None) -> AccessKey:
        return acs.verify(
            KEYS, self.method, self.path, self.query, self.form, self.headers, self.body, now
        )

    def with_query(self, name: str, value: str) -> Wire:
        kept = [(k, v) for k, v in self.query if k != name]
        return replace(self, query=[*kept, (name, value)])

    def with_header(self, name: str, value: str) -> Wire:
        return replace(self, headers={**self.headers, name: value})


def capture(
    monkeypatch: pytest.MonkeyPatch,
    call: Callable[[Client], Any],
    algorithm: str | None = None,
    secret: str = KEY.secret,
    key_id: str = KEY.key_id,
) -> Wire:
    """Run one SDK call with its transport stubbed; return the request it would send."""
    sent: list[Any] = []

    def record(request: Any, runtime: Any = None) -> DaraResponse:
        sent.append(request)
        response = DaraResponse()
        response.status_code = 200
        response.headers = {}
        response.body = b'{"RequestId":"R","Code":200,"Success":true}'
        return response

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(record))
    config = Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=ENDPOINT,
        protocol="http",
        region_id="cn-hangzhou",
    )
    if algorithm is not None:
        config.signature_algorithm = algorithm
    call(Client(config))
    (request,) = sent
    url = urlsplit(DaraCore.compose_url(request))
    headers = {str(k).lower(): str(v) for k, v in request.headers.items()}
    body = request.body or b""
    body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    form = (
        parse_form(body.decode(), "body")
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        else []
    )
    return Wire(request.method, url.path, parse_form(url.query, "query"), form, headers, body)


def create_queue(client: Client) -> Any:
    return client.create_queue(
        m.CreateQueueRequest(
            queue_name="photo-events",
            delay_seconds=5,
            enable_logging=True,
            dlq_policy=m.CreateQueueRequestDlqPolicy(
                enabled=True, dead_letter_target_queue="dead", max_receive_count=3
            ),
            # Characters every encoding layer treats differently: space, + / = ~ * and UTF-8.
            tag=[m.CreateQueueRequestTag(key="k 1+/=", value="v~*ü 中")],
        )
    )


def create_topic(client: Client) -> Any:
    # Scalars travel in the form body: the signature must cover it.
    return client.create_topic(
        m.CreateTopicRequest(topic_name="t-1", max_message_size=2048, enable_logging=False)
    )


def error_code(action: Callable[[], object]) -> str:
    with pytest.raises(ServiceError) as caught:
        action()
    return caught.value.code


# -- the SDK's schemes verify -------------------------------------------------------------


@pytest.mark.parametrize("call", [create_queue, create_topic])
@pytest.mark.parametrize("algorithm", [None, "v2", acs.ACS3_SM3])
def test_sdk_requests_verify(
    monkeypatch: pytest.MonkeyPatch, call: Callable[[Client], Any], algorithm: str | None
) -> None:
    wire = capture(monkeypatch, call, algorithm)
    assert wire.verify() == KEY


def test_default_configuration_signs_acs3_without_action_parameter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wire = capture(monkeypatch, create_queue)
    assert wire.headers["authorization"].startswith("ACS3-HMAC-SHA256 Credential=test-key,")
    assert wire.headers["x-acs-action"] == "CreateQueue"
    assert wire.headers["x-acs-version"] == "2022-01-19"
    assert "Action" not in dict(wire.query)
    assert dict(wire.query)["DlqPolicy"] == (
        '{"DeadLetterTargetQueue":"dead","Enabled":true,"MaxReceiveCount":3}'
    )
    assert dict(wire.query)["Tag.1.Key"] == "k 1+/="


def test_v2_configuration_signs_rpc_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = capture(monkeypatch, create_topic, "v2")
    query = dict(wire.query)
    assert query["Action"] == "CreateTopic"
    assert query["SignatureMethod"] == "HMAC-SHA1"
    assert query["SignatureVersion"] == "1.0"
    assert "authorization" not in wire.headers
    assert dict(wire.form) == {
        "EnableLogging": "False",
        "MaxMessageSize": "2048",
        "TopicName": "t-1",
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    algorithm=st.sampled_from([None, "v2"]),
)
def test_any_parameter_value_round_trips(
    monkeypatch: pytest.MonkeyPatch, value: str, algorithm: str | None
) -> None:
    def call(client: Client) -> Any:
        return client.list_queue(
            m.ListQueueRequest(queue_name=value, tag=[m.ListQueueRequestTag(key=value, value="x")])
        )

    assert capture(monkeypatch, call, algorithm).verify() == KEY


# -- ACS3 tampering ---------------------------------------------------------------------


@pytest.fixture
def acs3(monkeypatch: pytest.MonkeyPatch) -> Wire:
    return capture(monkeypatch, create_queue)


@pytest.fixture
def acs3_form(monkeypatch: pytest.MonkeyPatch) -> Wire:
    return capture(monkeypatch, create_topic)


def test_acs3_changed_query_value_is_refused(acs3: Wire) -> None:
    tampered = acs3.with_query("DelaySeconds", "6")
    assert error_code(tampered.verify) == "SignatureDoesNotMatch"


def test_acs3_added_query_parameter_is_refused(acs3: Wire) -> None:
    tampered = acs3.with_query("VisibilityTimeout", "60")
    assert error_code(tampered.verify) == "SignatureDoesNotMatch"


def test_acs3_changed_action_header_is_refused(acs3: Wire) -> None:
    tampered = acs3.with_header("x-acs-action", "DeleteQueue")
    assert error_code(tampered.verify) == "SignatureDoesNotMatch"


def test_acs3_changed_body_is_refused(acs3_form: Wire) -> None:
    tampered = replace(acs3_form, body=acs3_form.body.replace(b"2048", b"4096"))
    with pytest.raises(ServiceError) as caught:
        tampered.verify()
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "x-acs-content-sha256" in caught.value.message


def test_acs3_changed_body_and_declared_hash_is_refused(acs3_form: Wire) -> None:
    body = acs3_form.body.replace(b"2048", b"4096")
    tampered = replace(acs3_form, body=body).with_header(
        "x-acs-content-sha256", acs.payload_hash(body)
    )
    assert error_code(tampered.verify) == "SignatureDoesNotMatch"


def test_acs3_wrong_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = capture(monkeypatch, create_queue, secret="not-the-secret")
    with pytest.raises(ServiceError) as caught:
        wire.verify()
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "canonical request" in caught.value.message
    assert KEY.secret not in caught.value.message


def test_acs3_unknown_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = capture(monkeypatch, create_queue, key_id="someone-else")
    assert error_code(wire.verify) == "InvalidAccessKeyId.NotFound"


def test_acs3_changed_signature_is_refused(acs3: Wire) -> None:
    header = acs3.headers["authorization"]
    flipped = header[:-1] + ("0" if header[-1] != "0" else "1")
    assert error_code(acs3.with_header("authorization", flipped).verify) == "SignatureDoesNotMatch"


def test_acs3_clock_skew_of_fifteen_minutes(acs3: Wire) -> None:
    now = time.time()
    assert acs3.verify(now + SKEW - 60) == KEY
    assert acs3.verify(now - SKEW + 60) == KEY
    assert error_code(lambda: acs3.verify(now + SKEW + 60)) == "InvalidTimeStamp.Expired"
    assert error_code(lambda: acs3.verify(now - SKEW - 60)) == "InvalidTimeStamp.Expired"


def test_acs3_malformed_date_is_refused(acs3: Wire) -> None:
    tampered = acs3.with_header("x-acs-date", "yesterday")
    assert error_code(tampered.verify) == "InvalidTimeStamp.Format"


@pytest.mark.parametrize("required", ["x-acs-action", "x-acs-date"])
def test_acs3_must_sign_action_and_date(acs3: Wire, required: str) -> None:
    algorithm, key_id, signed, signature = acs.parse_acs3_authorization(
        acs3.headers["authorization"]
    )
    kept = ";".join(h for h in signed if h != required)
    header = f"{algorithm} Credential={key_id},SignedHeaders={kept},Signature={signature}"
    assert error_code(acs3.with_header("authorization", header).verify) == "IncompleteSignature"


def test_acs3_malformed_authorization_is_refused(acs3: Wire) -> None:
    tampered = acs3.with_header("authorization", "ACS3-HMAC-SHA256 Signature=abc")
    assert error_code(tampered.verify) == "IncompleteSignature"


def test_acs3_unsupported_algorithm_is_refused(acs3: Wire) -> None:
    header = acs3.headers["authorization"].replace("ACS3-HMAC-SHA256", "ACS3-RSA-SHA256")
    assert error_code(acs3.with_header("authorization", header).verify) == "InvalidSignatureMethod"


# -- RPC tampering ----------------------------------------------------------------------


@pytest.fixture
def rpc(monkeypatch: pytest.MonkeyPatch) -> Wire:
    return capture(monkeypatch, create_topic, "v2")


def test_rpc_changed_query_value_is_refused(rpc: Wire) -> None:
    assert error_code(rpc.with_query("Action", "DeleteTopic").verify) == "SignatureDoesNotMatch"


def test_rpc_changed_form_value_is_refused(rpc: Wire) -> None:
    form = [(k, "4096" if k == "MaxMessageSize" else v) for k, v in rpc.form]
    assert error_code(replace(rpc, form=form).verify) == "SignatureDoesNotMatch"


def test_rpc_dropped_form_parameter_is_refused(rpc: Wire) -> None:
    form = [(k, v) for k, v in rpc.form if k != "EnableLogging"]
    assert error_code(replace(rpc, form=form).verify) == "SignatureDoesNotMatch"


def test_rpc_wrong_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = capture(monkeypatch, create_topic, "v2", secret="not-the-secret")
    with pytest.raises(ServiceError) as caught:
        wire.verify()
    assert caught.value.code == "SignatureDoesNotMatch"
    # The message shows the server's string to sign: form parameters are part of it.
    assert "string to sign" in caught.value.message
    assert "TopicName%3Dt-1" in caught.value.message


def test_rpc_unknown_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = capture(monkeypatch, create_topic, "v2", key_id="someone-else")
    assert error_code(wire.verify) == "InvalidAccessKeyId.NotFound"


def test_rpc_clock_skew_of_fifteen_minutes(rpc: Wire) -> None:
    now = time.time()
    assert rpc.verify(now + SKEW - 60) == KEY
    assert error_code(lambda: rpc.verify(now + SKEW + 60)) == "InvalidTimeStamp.Expired"


def test_rpc_missing_timestamp_is_refused(rpc: Wire) -> None:
    query = [(k, v) for k, v in rpc.query if k != "Timestamp"]
    assert error_code(replace(rpc, query=query).verify) == "MissingTimestamp"


def test_rpc_other_signature_method_is_refused(rpc: Wire) -> None:
    tampered = rpc.with_query("SignatureMethod", "HMAC-SHA256")
    assert error_code(tampered.verify) == "InvalidSignatureMethod"


def test_rpc_bearer_token_is_refused(rpc: Wire) -> None:
    tampered = rpc.with_query("SignatureType", "BEARERTOKEN")
    assert error_code(tampered.verify) == "InvalidSignatureMethod"


def test_unsigned_request_is_refused(rpc: Wire) -> None:
    query = [(k, v) for k, v in rpc.query if k != "Signature"]
    with pytest.raises(ServiceError) as caught:
        replace(rpc, query=query).verify()
    assert caught.value.code == "IncompleteSignature"
    assert "ACS3-HMAC-SHA256" in caught.value.message
