"""The delivery ledger: every attempt recorded, failures kept, replay through API and CLI."""

from __future__ import annotations

import base64
import http.server
import itertools
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mns.account import Account
from mns.queue import QueueMeta
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMessage, TopicMeta

from tests.http_support import serve_http
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ACCOUNT_ID, ServerProcess
from tidings.cli import cli


class Receiver:
    """An HTTP endpoint answering 500 to the first `failures` pushes, then 204."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[bytes] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(body)
                failing = len(receiver.received) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = serve_http(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"only {len(self.received)} of {count} pushes"
            time.sleep(0.02)


@pytest.fixture
def fast_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", ["--clock-speed", "500"]).start()
    yield server
    server.stop()


def console(server: ServerProcess, path: str, body: dict[str, Any] | None = None) -> Any:
    token = base64.b64encode(f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}".encode()).decode()
    request = urllib.request.Request(
        server.urls["console"] + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Basic {token}"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def publish_to(server: ServerProcess, receiver: Receiver, strategy: str) -> str:
    account = Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    topic = account.get_topic("orders")
    topic.create(TopicMeta())
    topic.get_subscription("hook").subscribe(
        SubscriptionMeta(receiver.url, notify_strategy=strategy)
    )
    return str(topic.publish_message(TopicMessage("order 42")).message_id)


def wait_state(server: ServerProcess, message_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        found = console(server, f"/api/deliveries?message_id={message_id}")["Deliveries"]
        if found and found[0]["state"] == state:
            return dict(found[0])
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def test_every_attempt_is_recorded(fast_server: ServerProcess) -> None:
    receiver = Receiver(failures=2)
    message_id = publish_to(fast_server, receiver, "BACKOFF_RETRY")
    receiver.wait_for(3)
    delivery = wait_state(fast_server, message_id, "delivered")
    assert delivery["attempts"] == 3 and delivery["subscription_name"] == "hook"
    detail = console(fast_server, f"/api/deliveries/{delivery['id']}")
    assert [a["status"] for a in detail["attempts"]] == [500, 500, 204]
    times = [a["at_ms"] for a in detail["attempts"]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # 10–20 s on the server clock, which can only wake late: at speed 500 a thread woken
    # 50 ms late on a busy machine adds 25 s.
    assert all(10_000 <= gap <= 50_000 for gap in gaps), gaps


def test_exhausted_deliveries_are_kept_as_failed_and_can_be_replayed(
    fast_server: ServerProcess,
) -> None:
    receiver = Receiver(failures=4)
    message_id = publish_to(fast_server, receiver, "BACKOFF_RETRY")
    receiver.wait_for(4)
    failed = wait_state(fast_server, message_id, "failed")
    assert failed["attempts"] == 4 and failed["last_status"] == 500
    assert console(fast_server, "/api/deliveries/replay", {"message_id": message_id}) == {
        "Replayed": 1
    }
    receiver.wait_for(5)
    assert receiver.received[-1] == receiver.received[0]
    deadline = time.monotonic() + 10
    while True:
        found = console(fast_server, f"/api/deliveries?message_id={message_id}")["Deliveries"]
        states = sorted(d["state"] for d in found)
        if states == ["delivered", "failed"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert states == ["delivered", "failed"]


def test_the_cli_shows_and_replays(fast_server: ServerProcess) -> None:
    receiver = Receiver(failures=0)
    message_id = publish_to(fast_server, receiver, "EXPONENTIAL_DECAY_RETRY")
    receiver.wait_for(1)
    delivery = wait_state(fast_server, message_id, "delivered")
    runner = CliRunner(env={"COLUMNS": "250"})
    data = ["--data-dir", str(fast_server.data_dir)]
    listed = runner.invoke(cli, ["deliveries", "list", "--topic", "orders", *data])
    assert listed.exit_code == 0 and message_id in listed.output
    shown = runner.invoke(cli, ["deliveries", "show", str(delivery["id"]), *data])
    assert shown.exit_code == 0 and "204" in shown.output
    replayed = runner.invoke(cli, ["deliveries", "replay", "--subscription", "hook", *data])
    assert replayed.exit_code == 0 and "scheduled 1" in replayed.output
    receiver.wait_for(2)  # the running server picks the replay up by itself


def test_the_api_refuses_wrong_credentials_and_unbounded_replays(
    fast_server: ServerProcess,
) -> None:
    request = urllib.request.Request(fast_server.urls["console"] + "/api/deliveries")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as caught:
        console(fast_server, "/api/deliveries/replay", {})
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["Code"] == "InvalidArgument"


def test_a_queue_filled_by_the_publish_shows_one_attempt(fast_server: ServerProcess) -> None:
    account = Account(fast_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    account.get_queue("inbox").create(QueueMeta())
    topic = account.get_topic("orders")
    topic.create(TopicMeta())
    endpoint = f"acs:mns:cn-hangzhou:{ACCOUNT_ID}:queues/inbox"
    topic.get_subscription("to-inbox").subscribe(
        SubscriptionMeta(endpoint, notify_content_format="SIMPLIFIED")
    )
    message_id = topic.publish_message(TopicMessage("order 43")).message_id
    delivery = wait_state(fast_server, message_id, "delivered")
    assert delivery["attempts"] == 1 and delivery["subscription_name"] == "to-inbox"
    detail = console(fast_server, f"/api/deliveries/{delivery['id']}")
    assert detail["attempts"] == [
        {"attempt": 1, "at_ms": delivery["created_ms"], "status": None, "error": None,
         "latency_ms": 0}
    ]  # fmt: skip
    inbox = account.get_queue("inbox")
    inbox.set_encoding(False)
    assert inbox.receive_message(0).message_body == "order 43"
