"""Helpers of the producer-emulator integration tests: queues read raw with
`aliyun-mns-sdk`, rules made with the control-plane SDK, a scripted HTTP receiver."""

from __future__ import annotations

import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from alibabacloud_mns_open20220119 import models
from mns.account import Account
from mns.queue import QueueMeta

from tests.http_support import serve_http
from tests.integration.control_plane_support import client_for
from tests.support import ServerProcess


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_queue(account: Account, name: str) -> Any:
    """A queue whose bodies the SDK hands over raw (no Base64 decoding)."""
    queue = account.get_queue(name)
    queue.create(QueueMeta())
    queue.set_encoding(False)
    return queue


def receive(queue: Any, wait: int = 10) -> str:
    """One message body, deleted after reading."""
    message = queue.receive_message(wait_seconds=wait)
    queue.delete_message(message.receipt_handle)
    return str(message.message_body)


def create_rule(
    server: ServerProcess,
    product: str,
    name: str,
    event_types: list[str],
    endpoints: list[tuple[str, str]],
) -> None:
    """A rule through the official SDK; one endpoint via `Endpoint`, several via `Endpoints`."""
    request = models.CreateEventRuleRequest(
        product_name=product,
        rule_name=name,
        event_types=event_types,
        match_rules=[[models.EventMatchRule(prefix="")]],
    )
    if len(endpoints) == 1:
        kind, value = endpoints[0]
        request.endpoint = models.CreateEventRuleRequestEndpoint(
            endpoint_type=kind, endpoint_value=value
        )
    else:
        request.endpoints = [
            models.CreateEventRuleRequestEndpoints(endpoint_type=kind, endpoint_value=value)
            for kind, value in endpoints
        ]
    client_for(server).create_event_rule(request)


def delete_rule(server: ServerProcess, product: str, name: str) -> None:
    """Delete a rule through the official SDK."""
    client_for(server).delete_event_rule(
        models.DeleteEventRuleRequest(product_name=product, rule_name=name)
    )


class Receiver:
    """A local HTTP server recording requests and answering statuses from a script."""

    def __init__(self, statuses: list[int]) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.statuses = statuses
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(("POST", self.path, dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = serve_http(Handler)

    def url(self, path: str) -> str:
        """This receiver's URL for `path`."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        """Wait until `count` requests arrived."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, self.requests

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
