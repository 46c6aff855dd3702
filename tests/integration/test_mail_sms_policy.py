"""Mail and SMS endpoints (spec 10.7, 12.7) and the administrator's network policy for
HTTP endpoints, against real `tidings serve` processes configured through `tidings.toml`.

- Mail goes to a real local SMTP server (aiosmtpd) that records every envelope and can
  refuse a recipient a few times (451) to show failed mails are retried.
- SMS goes to a local HTTP gateway (`http.server`) that records every JSON request and
  can answer 500 a few times.
- The network policy (`allowed_networks`, `denied_networks`) is checked at subscribe
  time: a forbidden HTTP endpoint is refused with `EndpointInvalid` naming the address.

Servers with a configuration of their own are module-scoped (one per configuration);
the unconfigured checks use the shared session server.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from mns.account import Account
from mns.mns_common import TopicHelper
from mns.mns_exception import MNSServerException
from mns.mns_request import SubscribeRequest, SubscribeResponse
from mns.queue import QueueMeta
from mns.subscription import SubscriptionMeta
from mns.topic import DirectMailInfo, DirectSMSInfo, Topic, TopicMessage, TopicMeta

from tests.http_support import serve_http
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ACCOUNT_ID, ServerProcess

WAIT_SECONDS = 10.0
# How long to keep watching after the expected deliveries, to catch extra ones.
SETTLE_SECONDS = 1.0
MAIL_SENDER = "relay@tidings.test"
REGION = "cn-hangzhou"


# -- helpers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def configured(data_dir: Path, **settings: object) -> ServerProcess:
    """A started server whose `tidings.toml` [server] table holds `settings`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = ["[server]", *(f"{k} = {toml_value(v)}" for k, v in settings.items())]
    (data_dir / "tidings.toml").write_text("\n".join(lines) + "\n")
    return ServerProcess(data_dir).start()


def account_of(server: ServerProcess) -> Account:
    return Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def new_topic(account: Account) -> Topic:
    topic = account.get_topic(f"t-{uuid.uuid4().hex[:12]}")
    topic.create(TopicMeta())
    return topic


def subscribe(topic: Topic, name: str, endpoint: str, **meta: str) -> None:
    topic.get_subscription(name).subscribe(SubscriptionMeta(endpoint, **meta))


def subscription_names(topic: Topic) -> list[str]:
    urls, _ = topic.list_subscription()
    return sorted(url.rsplit("/", 1)[-1] for url in urls)


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


def refusal(account: Account, topic: Topic, endpoint: str, **meta: str) -> Refusal:
    """How the server refuses subscribing `endpoint`; also checks nothing was created."""
    request = SubscribeRequest(topic.topic_name, "refused", endpoint, **meta)
    response = SubscribeResponse()
    with pytest.raises(MNSServerException) as caught:
        account.mns_client.subscribe(request, response)
    assert topic.list_subscription() == ([], "")
    return Refusal(response.status, caught.value.type, caught.value.message)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def mail_direct(subject: str, *, html: bool = False, sender: str = "sender@example.com") -> Any:
    return DirectMailInfo(sender, subject, 0, 1 if html else 0, 0)


# -- the SMTP server ----------------------------------------------------------------------


@dataclass
class Mail:
    """One mail as the SMTP server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records accepted mails; refuses some recipients with 451."""

    mails: list[Mail] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)  # recipient -> times to refuse
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                if self.refusals.get(rcpt, 0) > 0:
                    self.refusals[rcpt] -= 1
                    self.refused.append(rcpt)
                    return "451 4.3.0 Try again later"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def mails_for(self, message_id: str) -> list[Mail]:
        """Mails of one published message (Tidings sets Message-ID to <{id}@tidings>)."""
        with self.lock:
            return [m for m in self.mails if message_id in (m.message["Message-ID"] or "")]

    def wait_for(self, message_id: str, count: int = 1) -> list[Mail]:
        wait_until(lambda: len(self.mails_for(message_id)) >= count, f"mail of {message_id}")
        time.sleep(SETTLE_SECONDS)
        return self.mails_for(message_id)


def text_of(message: EmailMessage) -> str:
    """The mail's text with SMTP's CRLF line ends (and MIME's final newline) undone."""
    return str(message.get_content()).replace("\r\n", "\n").rstrip("\n")


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpRecorder, int]]:
    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, port
    controller.stop()


# -- HTTP recorders (SMS gateway, push receiver) -----------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpRecorder:
    """A local HTTP server that records POSTs; `failures[key(body)]` of them answer 500."""

    def __init__(self, key: Callable[[bytes], str] = lambda body: "") -> None:
        self.requests: list[Request] = []
        self.failures: dict[str, int] = {}
        self.key = key
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = 200
                with recorder.lock:
                    recorder.requests.append(Request(self.path, dict(self.headers), body))
                    key = recorder.key(body)
                    if recorder.failures.get(key, 0) > 0:
                        recorder.failures[key] -= 1
                        status = 500
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = serve_http(Handler)
        self.port = int(self.server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def matching(self, predicate: Callable[[Request], bool]) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if predicate(r)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sms_key(body: bytes) -> str:
    try:
        return str(json.loads(body).get("Body", ""))
    except ValueError:
        return ""


@pytest.fixture(scope="module")
def gateway() -> Iterator[HttpRecorder]:
    recorder = HttpRecorder(sms_key)
    yield recorder
    recorder.close()


def sms_requests(gateway: HttpRecorder, message_id: str, count: int) -> list[dict[str, Any]]:
    """The gateway requests for one message, once `count` arrived (and a moment after)."""

    def of_message(r: Request) -> bool:
        return sms_key(r.body) != "" and r.json().get("MessageId") == message_id

    wait_until(lambda: len(gateway.matching(of_message)) >= count, f"SMS for {message_id}")
    time.sleep(SETTLE_SECONDS)
    found = gateway.matching(of_message)
    for request in found:
        assert request.headers["Content-Type"].startswith("application/json")
    return [r.json() for r in found]


# -- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def delivering(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[SmtpRecorder, int],
    gateway: HttpRecorder,
) -> Iterator[Account]:
    """A server with an SMTP relay and an SMS gateway configured."""
    server = configured(
        tmp_path_factory.mktemp("delivering") / "data",
        smtp_host="127.0.0.1",
        smtp_port=smtp[1],
        mail_sender=MAIL_SENDER,
        sms_gateway_url=gateway.url("/sms/send"),
    )
    yield account_of(server)
    server.stop()


@pytest.fixture(scope="module")
def denying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    """A server whose administrator forbids pushes to loopback addresses."""
    server = configured(
        tmp_path_factory.mktemp("denying") / "data", denied_networks=["127.0.0.0/8", "::1/128"]
    )
    yield account_of(server)
    server.stop()


@pytest.fixture(scope="module")
def allow_listing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    """A server that only pushes to 10.0.0.0/8, except 10.9.0.0/16."""
    server = configured(
        tmp_path_factory.mktemp("allow-listing") / "data",
        allowed_networks=["10.0.0.0/8"],
        denied_networks=["10.9.0.0/16"],
    )
    yield account_of(server)
    server.stop()


# -- mail ---------------------------------------------------------------------------------


def test_mail_endpoint_receives_one_plain_mail_per_publish(
    delivering: Account, smtp: tuple[SmtpRecorder, int]
) -> None:
    recorder, _ = smtp
    topic = new_topic(delivering)
    subscribe(
        topic, "alice", "mail:directmail:alice@example.com", notify_content_format="SIMPLIFIED"
    )
    body = "Hello Alice,\nyour order has shipped."
    published = topic.publish_message(
        TopicMessage(body, direct_mail=mail_direct("Your order", sender="shop@example.com"))
    )

    [mail] = recorder.wait_for(published.message_id)
    assert mail.mail_from == "shop@example.com"
    assert mail.rcpt_tos == ["alice@example.com"]
    message = mail.message
    assert message["From"] == "shop@example.com"
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "Your order"
    assert message.get_content_type() == "text/plain"
    assert text_of(message) == body


def test_mail_with_is_html_is_sent_as_html(
    delivering: Account, smtp: tuple[SmtpRecorder, int]
) -> None:
    recorder, _ = smtp
    topic = new_topic(delivering)
    subscribe(
        topic, "alice", "mail:directmail:alice@example.com", notify_content_format="SIMPLIFIED"
    )
    body = "<html><body><h1>Sale</h1><p>50% off &amp; more</p></body></html>"
    published = topic.publish_message(
        TopicMessage(body, direct_mail=mail_direct("Sale", html=True))
    )

    [mail] = recorder.wait_for(published.message_id)
    assert mail.message["Subject"] == "Sale"
    assert mail.message.get_content_type() == "text/html"
    assert text_of(mail.message) == body


def test_mail_keeps_non_ascii_subject_and_body(
    delivering: Account, smtp: tuple[SmtpRecorder, int]
) -> None:
    recorder, _ = smtp
    topic = new_topic(delivering)
    subscribe(topic, "bob", "mail:directmail:bob@example.com", notify_content_format="SIMPLIFIED")
    body = "Grüße aus Köln — 你好，世界 ✓"
    published = topic.publish_message(TopicMessage(body, direct_mail=mail_direct("Grüße ✓ 你好")))

    [mail] = recorder.wait_for(published.message_id)
    assert mail.message["Subject"] == "Grüße ✓ 你好"
    assert text_of(mail.message) == body


def test_every_mail_subscription_gets_its_own_mail(
    delivering: Account, smtp: tuple[SmtpRecorder, int]
) -> None:
    recorder, _ = smtp
    topic = new_topic(delivering)
    for name in ("carol", "dave"):
        subscribe(
            topic, name, f"mail:directmail:{name}@example.com", notify_content_format="SIMPLIFIED"
        )
    published = topic.publish_message(TopicMessage("for both", direct_mail=mail_direct("Both")))

    mails = recorder.wait_for(published.message_id, 2)
    assert sorted(rcpt for m in mails for rcpt in m.rcpt_tos) == [
        "carol@example.com",
        "dave@example.com",
    ]
    assert sorted(m.message["To"] for m in mails) == ["carol@example.com", "dave@example.com"]


def test_mail_without_direct_mail_attributes_comes_from_the_configured_sender(
    delivering: Account, smtp: tuple[SmtpRecorder, int]
) -> None:
    recorder, _ = smtp
    topic = new_topic(delivering)
    subscribe(topic, "erin", "mail:directmail:erin@example.com", notify_content_format="SIMPLIFIED")
    published = topic.publish_message(TopicMessage("no attributes"))

    [mail] = recorder.wait_for(published.message_id)
    assert mail.message["From"] == MAIL_SENDER
    assert mail.message["To"] == "erin@example.com"
    assert text_of(mail.message) == "no attributes"


def test_a_mail_the_relay_refuses_is_retried(
    delivering: Account, smtp: tuple[SmtpRecorder, int]
) -> None:
    recorder, _ = smtp
    address = f"frank-{uuid.uuid4().hex[:8]}@example.com"
    with recorder.lock:
        recorder.refusals[address] = 1
    topic = new_topic(delivering)
    subscribe(
        topic,
        "frank",
        f"mail:directmail:{address}",
        notify_content_format="SIMPLIFIED",
        notify_strategy="EXPONENTIAL_DECAY_RETRY",  # first retry after 1 s
    )
    published = topic.publish_message(
        TopicMessage("second time lucky", direct_mail=mail_direct("R"))
    )

    [mail] = recorder.wait_for(published.message_id)
    assert recorder.refused.count(address) == 1
    assert mail.rcpt_tos == [address]


def test_mail_endpoint_formats_other_than_simplified_are_invalid_argument(
    delivering: Account,
) -> None:
    topic = new_topic(delivering)
    for fmt in ("XML", "JSON"):
        error = refusal(
            delivering, topic, "mail:directmail:alice@example.com", notify_content_format=fmt
        )
        assert (error.status, error.code) == (400, "InvalidArgument"), fmt
        assert "SIMPLIFIED" in error.message
    # The SDK leaves the format empty unless told; the default (XML) is refused too.
    error = refusal(delivering, topic, "mail:directmail:alice@example.com")
    assert (error.status, error.code) == (400, "InvalidArgument")


def test_mail_endpoint_without_smtp_relay_is_endpoint_invalid(account: Account) -> None:
    topic = new_topic(account)
    endpoint = TopicHelper.generate_mail_endpoint("alice@example.com")
    error = refusal(account, topic, endpoint, notify_content_format="SIMPLIFIED")
    assert (error.status, error.code) == (400, "EndpointInvalid")
    assert "SMTP" in error.message


# -- SMS ----------------------------------------------------------------------------------


def sms_info(single: bool, receivers: dict[str, dict[str, str]], params: Any = None) -> Any:
    info = DirectSMSInfo("Shop", "SMS_0001", single)
    for phone, own in receivers.items():
        info.add_receiver(phone, own)
    if params is not None:
        info.set_params(params)
    return info


def test_sms_endpoint_without_gateway_is_refused_with_a_clear_error(account: Account) -> None:
    topic = new_topic(account)
    for endpoint in ("sms:directsms:anonymous", "sms:directsms:13800000000"):
        error = refusal(account, topic, endpoint)
        assert (error.status, error.code) == (400, "EndpointInvalid"), endpoint
        assert "SMS gateway" in error.message


def test_sms_to_a_phone_endpoint_posts_the_documented_json(
    delivering: Account, gateway: HttpRecorder
) -> None:
    topic = new_topic(delivering)
    subscribe(topic, "phone", "sms:directsms:13800000000")
    body = f"sms-{uuid.uuid4().hex}"
    info = sms_info(True, {"13900000009": {}}, {"name": "Ann"})
    published = topic.publish_message(TopicMessage(body, direct_sms=info))

    [request] = sms_requests(gateway, published.message_id, 1)
    assert request == {
        "PhoneNumbers": "13800000000",  # the endpoint's phone, not the message's Receiver
        "SignName": "Shop",
        "TemplateCode": "SMS_0001",
        "Type": "singleContent",
        "TemplateParam": '{"name": "Ann"}',
        "MessageId": published.message_id,
        "Body": body,
    }
    assert gateway.matching(lambda r: sms_key(r.body) == body)[0].path == "/sms/send"


def test_sms_to_anonymous_takes_the_receivers_from_the_message(
    delivering: Account, gateway: HttpRecorder
) -> None:
    topic = new_topic(delivering)
    subscribe(topic, "anyone", "sms:directsms:anonymous", notify_content_format="SIMPLIFIED")
    subscribe(topic, "phone", "sms:directsms:13800000000", notify_content_format="JSON")
    body = f"sms-{uuid.uuid4().hex}"
    info = sms_info(True, {"13900000001": {}, "13900000002": {}}, {"code": "4711"})
    published = topic.publish_message(TopicMessage(body, direct_sms=info))

    requests = sms_requests(gateway, published.message_id, 2)
    assert len(requests) == 2
    by_phone = {r["PhoneNumbers"]: r for r in requests}
    assert "13800000000" in by_phone
    [anonymous] = [r for r in requests if r["PhoneNumbers"] != "13800000000"]
    assert sorted(anonymous["PhoneNumbers"].split(",")) == ["13900000001", "13900000002"]
    for request in requests:
        assert request["Type"] == "singleContent"
        assert json.loads(request["TemplateParam"]) == {"code": "4711"}
        assert request["Body"] == body


def test_sms_multi_content_to_anonymous_sends_to_every_phone_in_the_params(
    delivering: Account, gateway: HttpRecorder
) -> None:
    topic = new_topic(delivering)
    subscribe(topic, "anyone", "sms:directsms:anonymous")
    body = f"sms-{uuid.uuid4().hex}"
    info = sms_info(False, {"13900000003": {"code": "1"}, "13900000004": {"code": "2"}})
    published = topic.publish_message(TopicMessage(body, direct_sms=info))

    [request] = sms_requests(gateway, published.message_id, 1)
    assert request["Type"] == "multiContent"
    assert json.loads(request["TemplateParam"]) == {
        "13900000003": {"code": "1"},
        "13900000004": {"code": "2"},
    }
    assert sorted(request["PhoneNumbers"].split(",")) == ["13900000003", "13900000004"]


def test_an_sms_the_gateway_fails_is_retried(delivering: Account, gateway: HttpRecorder) -> None:
    topic = new_topic(delivering)
    subscribe(
        topic, "phone", "sms:directsms:13800000000", notify_strategy="EXPONENTIAL_DECAY_RETRY"
    )
    body = f"sms-{uuid.uuid4().hex}"
    with gateway.lock:
        gateway.failures[body] = 2
    published = topic.publish_message(
        TopicMessage(body, direct_sms=sms_info(True, {}, {"name": "Ann"}))
    )

    # Retries after 1 s and 2 s: three requests, the last one answered 200.
    requests = sms_requests(gateway, published.message_id, 3)
    assert len(requests) == 3
    assert gateway.failures[body] == 0
    wait_until(lambda: topic.get_attributes().message_count == 0, "the delivery to finish")


# -- network policy -----------------------------------------------------------------------


def test_denied_network_refuses_loopback_endpoints_naming_the_address(denying: Account) -> None:
    topic = new_topic(denying)
    port = free_port()
    for endpoint, address in [
        (f"http://127.0.0.1:{port}/notify", "127.0.0.1"),
        (f"http://127.1.2.3:{port}/", "127.1.2.3"),
        (f"http://localhost:{port}/notify", "127.0.0.1"),
        (f"http://[::1]:{port}/notify", "::1"),
    ]:
        error = refusal(denying, topic, endpoint)
        assert (error.status, error.code) == (400, "EndpointInvalid"), endpoint
        assert address in error.message, (endpoint, error.message)


def test_denied_network_still_accepts_other_addresses_and_queue_endpoints(
    denying: Account,
) -> None:
    topic = new_topic(denying)
    subscribe(topic, "elsewhere", "http://10.1.2.3:8080/notify")
    queue = denying.get_queue(f"q-{uuid.uuid4().hex[:12]}")
    queue.create(QueueMeta())
    subscribe(
        topic, "queue", TopicHelper.generate_queue_endpoint(REGION, ACCOUNT_ID, queue.queue_name)
    )
    assert subscription_names(topic) == ["elsewhere", "queue"]


def test_denied_network_refuses_ipv4_mapped_ipv6_loopback(denying: Account) -> None:
    topic = new_topic(denying)
    error = refusal(denying, topic, f"http://[::ffff:127.0.0.1]:{free_port()}/notify")
    assert (error.status, error.code) == (400, "EndpointInvalid")


def test_allowed_networks_refuse_everything_outside_them(allow_listing: Account) -> None:
    topic = new_topic(allow_listing)
    port = free_port()
    for endpoint, address in [
        (f"http://127.0.0.1:{port}/notify", "127.0.0.1"),
        (f"http://192.168.1.1:{port}/", "192.168.1.1"),
        (f"http://10.9.0.1:{port}/", "10.9.0.1"),  # in the allowed /8, but denied wins
    ]:
        error = refusal(allow_listing, topic, endpoint)
        assert (error.status, error.code) == (400, "EndpointInvalid"), endpoint
        assert address in error.message, (endpoint, error.message)
    subscribe(topic, "inside", "http://10.0.0.5:8080/notify")
    assert subscription_names(topic) == ["inside"]


def test_a_host_that_does_not_resolve_is_refused_under_a_policy(allow_listing: Account) -> None:
    topic = new_topic(allow_listing)
    error = refusal(allow_listing, topic, "http://no-such-host.invalid/notify")
    assert (error.status, error.code) == (400, "EndpointInvalid")
    assert "no-such-host.invalid" in error.message


def test_by_default_loopback_endpoints_are_allowed_and_pushed_to(account: Account) -> None:
    receiver = HttpRecorder()
    topic = new_topic(account)
    try:
        subscribe(topic, "local", receiver.url("/hook"), notify_content_format="SIMPLIFIED")
        subscribe(topic, "local6", f"http://[::1]:{free_port()}/hook")
        assert subscription_names(topic) == ["local", "local6"]
        topic.get_subscription("local6").unsubscribe()  # nothing listens there
        published = topic.publish_message(TopicMessage("loopback is fine"))
        wait_until(lambda: bool(receiver.matching(lambda r: True)), "the push")
        time.sleep(SETTLE_SECONDS)
        [request] = receiver.matching(lambda r: True)
        assert request.path == "/hook"
        assert request.body == b"loopback is fine"
        assert request.headers["x-mns-message-id"] == published.message_id
    finally:
        topic.delete()
        receiver.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_rule_added_later_stops_pushes_to_existing_subscriptions(
    tmp_path: Path, host: str
) -> None:
    """The rules hold at connect time too: for IP literals and for resolved names."""
    receiver = HttpRecorder()
    data_dir = tmp_path / "data"
    server = configured(data_dir)
    try:
        topic = new_topic(account_of(server))
        subscribe(topic, "hook", f"http://{host}:{receiver.port}/hook")
        topic.publish_message(TopicMessage("allowed"))
        wait_until(lambda: len(receiver.requests) == 1, "the first push")
        server.stop()
        server = configured(data_dir, denied_networks=["127.0.0.0/8", "::1/128"])
        topic = account_of(server).get_topic(topic.topic_name)
        topic.publish_message(TopicMessage("denied"))
        time.sleep(1.0)
        assert len(receiver.requests) == 1
        token = base64.b64encode(f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}".encode()).decode()
        request = urllib.request.Request(
            f"{server.urls['console']}/api/deliveries?state=pending",
            headers={"Authorization": f"Basic {token}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            (pending,) = json.loads(response.read())["Deliveries"]
        assert "not allowed by the administrator" in pending["last_error"]
    finally:
        server.stop()
        receiver.close()
