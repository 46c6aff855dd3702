"""An object's events reach an HTTP endpoint in commit order, even when a push fails
and is retried; another object's events are not held up meanwhile.

A real server (clock 100× fast, so the rule's EXPONENTIAL_DECAY_RETRY retries after
10 ms), a rule made with the control-plane SDK whose endpoint is a local receiver, and
`oss2` writing two keys. The receiver holds the first push of key `a` until every event
of key `b` has arrived, then fails it: `b` provably went past `a`, and `a`'s later events
must wait for that push's retry.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import oss2
import pytest
from alibabacloud_mns_open20220119 import models as m

from tests.http_support import serve_http
from tests.integration.control_plane_support import client_for
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

BUCKET = "ordered-events"
DEADLINE_SECONDS = 20.0
# Below the server's 5 s push timeout: the held push must end in our 500, not a timeout.
HOLD_SECONDS = 4.0


@dataclass
class Push:
    key: str
    request_id: str
    event_name: str
    status: int


@dataclass
class Receiver:
    """Answers pushes 200, except the first push of `held_key`: held until
    `other_count` events of key `b` arrived (or a while), then answered 500."""

    held_key: str
    other_count: int
    pushes: list[Push] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    failed_once: bool = False

    def start(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                (event,) = json.loads(base64.b64decode(body))["events"]
                key = event["oss"]["object"]["key"]
                status = receiver.answer(key)
                with receiver.changed:
                    receiver.pushes.append(
                        Push(
                            key,
                            event["responseElements"]["requestId"],
                            event["eventName"],
                            status,
                        )
                    )
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return serve_http(Handler)

    def answer(self, key: str) -> int:
        with self.changed:
            if key != self.held_key or self.failed_once:
                return 200
            self.failed_once = True
            self.changed.notify_all()  # the test waits for this push before writing b
            self.changed.wait_for(
                lambda: len(self.delivered("b")) >= self.other_count, HOLD_SECONDS
            )
            return 500

    def delivered(self, key: str) -> list[str]:
        """Request ids of the pushes of `key` answered 200, in arrival order."""
        return [p.request_id for p in self.pushes if p.key == key and p.status == 200]

    def wait_for(self, key: str, count: int) -> list[str]:
        with self.changed:
            done = self.changed.wait_for(
                lambda: len(self.delivered(key)) >= count, DEADLINE_SECONDS
            )
            assert done, f"{len(self.delivered(key))} of {count} events of {key}: {self.pushes}"
            return self.delivered(key)


@pytest.fixture
def fast_server(fresh_server: ServerProcess) -> Iterator[ServerProcess]:
    """A server of the test's own whose retry timers run 100 times faster."""
    fresh_server.extra_args = ["--clock-speed", "100"]
    yield fresh_server.start()


def test_one_keys_events_arrive_in_commit_order_and_other_keys_are_not_held_up(
    fast_server: ServerProcess,
) -> None:
    server = fast_server
    a_ops = ["put", "put", "delete", "put", "put"]
    b_ops = ["put", "delete", "put"]
    receiver = Receiver(held_key="a", other_count=len(b_ops))
    httpd = receiver.start()
    try:
        bucket = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), server.oss_url, BUCKET)
        bucket.create_bucket()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/events"
        client_for(server).create_event_rule(
            m.CreateEventRuleRequest(
                product_name="oss",
                rule_name="ordered",
                event_types=["PutObject", "DeleteObject"],
                match_rules=[[m.EventMatchRule(prefix=f"{BUCKET}/")]],
                endpoints=[
                    m.CreateEventRuleRequestEndpoints(endpoint_type="http", endpoint_value=url)
                ],
            )
        )

        def run(key: str, op: str, n: int) -> str:
            if op == "put":
                return bucket.put_object(key, f"{key} {n}".encode()).request_id
            return bucket.delete_object(key).request_id

        # Key a's first event is pushed (and held) before any of b's changes is made.
        committed = {"a": [run("a", a_ops[0], 0)], "b": []}
        with receiver.changed:
            assert receiver.changed.wait_for(lambda: receiver.failed_once, DEADLINE_SECONDS)
        for n, op in enumerate(b_ops):
            committed["b"].append(run("b", op, n))
        for n, op in enumerate(a_ops[1:], 1):
            committed["a"].append(run("a", op, n))

        assert receiver.wait_for("b", len(b_ops)) == committed["b"]
        started = time.monotonic()
        assert receiver.wait_for("a", len(a_ops)) == committed["a"]
        with receiver.changed:
            pushes = list(receiver.pushes)
        # b went while a's first push was held; nothing of a overtook its failed first
        # push: the first push of a failed, the next push of a is that event's retry.
        first_a = next(i for i, p in enumerate(pushes) if p.key == "a")
        last_b = max(i for i, p in enumerate(pushes) if p.key == "b")
        assert last_b < first_a, f"b's events waited for a's failing push: {pushes}"
        a_pushes = [(p.request_id, p.status) for p in pushes if p.key == "a"]
        assert a_pushes[:2] == [(committed["a"][0], 500), (committed["a"][0], 200)]
        assert [rid for rid, _ in a_pushes[1:]] == committed["a"], "a duplicate or reorder"
        assert time.monotonic() - started < DEADLINE_SECONDS
    finally:
        httpd.shutdown()
        httpd.server_close()
