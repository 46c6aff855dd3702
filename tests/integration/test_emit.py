"""The producer emulator end to end: `tidings emit` and `POST /api/emit/{product}`.

Rules are created with the official control-plane SDK, events emitted through the
console API of a running server or the CLI on a stopped server's data dir, and received
with the official `aliyun-mns-sdk` (Base64 decoding off: these producers send plain
text, spec event-sources §0) or by local HTTP servers, then compared with the documented
formats byte for byte. VOD HTTP callbacks are checked for their signature, recomputed
here from the spec's recipe (§4.2).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from mns.account import Account

from tests.integration.emit_support import (
    Receiver,
    create_rule,
    delete_rule,
    make_queue,
    receive,
    unique,
)
from tests.producer_examples import (
    DM_FAILURE,
    DM_SUCCESS,
    VISION_EXAMPLE,
    VOD_EXAMPLES,
    compact,
    dm_fields,
)
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess, console
from tidings.app import running
from tidings.cli import cli
from tidings.config import load_settings

STREAM_EXAMPLE = VOD_EXAMPLES[2]
UPLOAD_EXAMPLE = VOD_EXAMPLES[0]


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.close()


def test_directmail_events_reach_a_dm_rules_queue_and_http_endpoint_exactly(
    server: ServerProcess, account: Account, receivers: list[Receiver]
) -> None:
    """Seed 001's walkthrough for DirectMail: a rule for both delivery event types with a
    queue and an HTTP endpoint (auto topic, SIMPLIFIED subscriptions); the bodies are the
    documented `k=v&...` text, neither Base64 nor percent-encoded."""
    queue = make_queue(account, unique("dm"))
    hook = Receiver([])
    receivers.append(hook)
    rule = unique("dm-results")
    endpoints = [("queue", queue.queue_name), ("http", hook.url("/dm-events"))]
    create_rule(server, "dm", rule, ["Deliver:SendSuccessfully", "Deliver:SendFailed"], endpoints)
    try:
        for event_type, example in (
            ("Deliver:SendSuccessfully", DM_SUCCESS),
            ("Deliver:SendFailed", DM_FAILURE),
        ):
            status, answer = console(
                server,
                "POST",
                "/api/emit/dm",
                {"EventType": event_type, "Fields": dm_fields(example)},
            )
            assert status == 200, answer
            assert answer["MessageBody"] == example
            (published,) = answer["Published"]
            assert published["RuleName"] == rule and published["Error"] is None
            assert published["TopicName"].startswith(f"mns-en-topics-dm-{rule}-")
            assert answer["MessageIds"] == [published["MessageId"]]
            assert answer["Callback"] is None
            assert receive(queue) == example
        hook.wait_for(2)
        assert sorted(body.decode() for *_, body in hook.requests) == sorted(
            [DM_SUCCESS, DM_FAILURE]
        )
        assert all(path == "/dm-events" for _, path, _, _ in hook.requests)
        assert all(h["Content-Type"].startswith("text/plain") for _, _, h, _ in hook.requests)
    finally:
        delete_rule(server, "dm", rule)


def test_vod_events_reach_the_vod_rule_and_the_mns_callback(
    server: ServerProcess, account: Account
) -> None:
    """A VOD event goes to the VOD rules' endpoints and to the application's MNS queue
    callback (§4.3), both as the plain JSON of §4.5; EventTypeList gates the callback."""
    rule_queue = make_queue(account, unique("vod-rule"))
    callback_queue = make_queue(account, unique("vod-cb"))
    app = unique("app")
    rule = unique("vod-transcodes")
    create_rule(
        server, "vod", rule, ["StreamTranscodeComplete"], [("queue", rule_queue.queue_name)]
    )
    settings = {
        "AppId": app,
        "CallbackType": "MNS",
        "MnsEndpoint": "https://1234567890123456.mns.cn-shanghai.aliyuncs.com/",
        "MnsQueueName": callback_queue.queue_name,
        "EventTypeList": "StreamTranscodeComplete,AIComplete",
    }
    try:
        status, answer = console(server, "PUT", "/api/emit/vod/callback", settings)
        assert status == 200, answer
        expected_config = {**settings, "CallbackURL": "", "AuthSwitch": "off", "AuthKey": ""}
        assert answer["MessageCallback"] == expected_config
        assert console(server, "GET", f"/api/emit/vod/callback?AppId={app}") == (
            200,
            {"MessageCallback": expected_config},
        )

        fields = json.loads(STREAM_EXAMPLE)
        request = {"EventType": "StreamTranscodeComplete", "Fields": fields, "AppId": app}
        status, answer = console(server, "POST", "/api/emit/vod", request)
        assert status == 200, answer
        assert answer["MessageBody"] == compact(STREAM_EXAMPLE)
        callback = answer["Callback"]
        assert callback["CallbackType"] == "MNS" and callback["Success"] is True
        assert callback["Attempts"] == 1 and callback["Target"] == callback_queue.queue_name
        assert answer["MessageIds"] == [answer["Published"][0]["MessageId"], callback["MessageId"]]
        assert receive(rule_queue) == compact(STREAM_EXAMPLE)
        assert receive(callback_queue) == compact(STREAM_EXAMPLE)

        # Not switched on for the callback, and no rule selects it: nothing is sent.
        request = {"EventType": "FileUploadComplete", "AppId": app}
        status, answer = console(server, "POST", "/api/emit/vod", request)
        assert status == 200 and answer["Published"] == [] and answer["MessageIds"] == []
        assert answer["Callback"]["Skipped"] is True
        assert "not in EventTypeList" in answer["Callback"]["Error"]
    finally:
        delete_rule(server, "vod", rule)
        console(server, "DELETE", f"/api/emit/vod/callback?AppId={app}")
    assert console(server, "GET", f"/api/emit/vod/callback?AppId={app}")[0] == 404


def test_vod_http_callback_is_signed_retried_and_needs_exactly_200(
    server: ServerProcess, receivers: list[Receiver]
) -> None:
    """§4.2: POST of the event JSON with X-VOD-TIMESTAMP / X-VOD-SIGNATURE (MD5 of
    URL|timestamp|key), success only on 200 (a redirect is not followed), 3 attempts
    1 s apart."""
    hook = Receiver([500, 302, 200])
    receivers.append(hook)
    url = hook.url("/vod/callback")
    app = unique("app")
    key = "Vod2025Key"
    status, answer = console(
        server,
        "PUT",
        "/api/emit/vod/callback",
        {"AppId": app, "CallbackType": "HTTP", "CallbackURL": url, "AuthKey": key},
    )
    assert status == 200 and answer["MessageCallback"]["AuthSwitch"] == "on", answer
    try:
        started = time.monotonic()
        request = {"EventType": "FileUploadComplete", "Fields": json.loads(UPLOAD_EXAMPLE)}
        status, answer = console(server, "POST", "/api/emit/vod", {**request, "AppId": app})
        elapsed = time.monotonic() - started
        assert status == 200, answer
        callback = answer["Callback"]
        assert (callback["Success"], callback["Attempts"], callback["HttpStatus"]) == (
            True,
            3,
            200,
        ), callback
        assert elapsed >= 2.0  # two pauses of 1 s between the three attempts
        assert len(hook.requests) == 3
        for method, path, headers, body in hook.requests:
            assert (method, path) == ("POST", "/vod/callback")
            assert headers["Content-Type"] == "application/json"
            assert body.decode() == compact(UPLOAD_EXAMPLE) == answer["MessageBody"]
            stamp = headers["X-VOD-TIMESTAMP"]
            assert len(stamp) == 10 and abs(int(stamp) - time.time()) < 60
            expected = hashlib.md5(f"{url}|{stamp}|{key}".encode()).hexdigest()
            assert headers["X-VOD-SIGNATURE"] == expected

        # A receiver that never answers 200: three attempts, then the event is dropped.
        hook.statuses[:] = [204, 204, 204]
        status, answer = console(server, "POST", "/api/emit/vod", {**request, "AppId": app})
        callback = answer["Callback"]
        assert (callback["Success"], callback["Attempts"], callback["Error"]) == (
            False,
            3,
            "HTTP 204",
        )
    finally:
        console(server, "DELETE", f"/api/emit/vod/callback?AppId={app}")


def test_console_emit_refusals_and_listing(server: ServerProcess) -> None:
    assert console(server, "POST", "/api/emit/dm", {"EventType": "x"}, auth=False)[0] == 401
    status, answer = console(server, "GET", "/api/emit/vision")
    assert status == 200 and "SuperResolveVideo" in answer["EventTypes"]
    assert answer["Product"] == "viapi"
    for path, body, code in (
        ("/api/emit/oss", {"EventType": "PutObject"}, "InvalidProductName"),
        ("/api/emit/sms", {"EventType": "x"}, "InvalidProductName"),
        ("/api/emit/vod", {"EventType": "FileUploadDone"}, "EventTypeInvalid"),
        ("/api/emit/vod", {"Fields": {}}, "InvalidArgument"),
        ("/api/emit/vod", {"EventType": "FileUploadComplete", "Fields": []}, "InvalidArgument"),
        ("/api/emit/dm", {"EventType": "Deliver:SendFailed", "Field": {}}, "InvalidArgument"),
        (
            "/api/emit/dm",
            {"EventType": "Deliver:SendFailed", "Fields": {"status": "0"}},
            "InvalidArgument",
        ),
        ("/api/emit/vod/callback", {"CallbackType": "HTTP"}, "InvalidArgument"),
    ):
        status, answer = console(server, "POST", path, body)
        assert (status, answer["Code"]) == (400, code), (path, body, answer)
        assert answer["Message"]
    assert console(server, "GET", "/api/emit/vod/callback?AppId=none-such")[0] == 404
    assert console(server, "POST", "/api/emit/dm/extra", {})[0] == 404


def test_cli_emits_on_a_stopped_servers_data_dir(fresh_server: ServerProcess) -> None:
    """Seed 001's Vision AI walkthrough (queue MyQueue, rule SuperResolveVideoRule for
    SuperResolveVideo) with the event emitted by the CLI while the server is down, plus a
    VOD queue callback set and used through the CLI; the restarted server delivers both."""
    fresh_server.start()
    account = Account(fresh_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    make_queue(account, "MyQueue")
    make_queue(account, "vod-callbacks")
    create_rule(
        fresh_server,
        "viapi",
        "SuperResolveVideoRule",
        ["SuperResolveVideo"],
        [("queue", "MyQueue")],
    )
    fresh_server.stop()

    runner = CliRunner(env={**fresh_server.env(), "COLUMNS": "200"})
    data = str(fresh_server.data_dir)

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["emit", *args, "--data-dir", data])
        assert result.exit_code == code, (result.output, result.exception)
        return result.output

    example = json.loads(VISION_EXAMPLE)
    fields = [f"jobId={example['jobId']}", f"result={json.dumps(example['result'])}"]
    output = run("vision", "SuperResolveVideo", *[a for f in fields for a in ("-f", f)])
    assert f"body {compact(VISION_EXAMPLE)}" in output
    assert (
        "rule SuperResolveVideoRule -> topic mns-en-topics-viapi-SuperResolveVideoRule-" in output
    )
    assert "vod-callbacks" in run("vod-callback", "set", "--queue", "vod-callbacks")
    assert "CallbackType: MNS" in run("vod-callback", "show")
    output = run("vod", "FileUploadComplete", "-f", "VideoId=v-42", "-f", "Size=1024")
    assert "callback MNS vod-callbacks: ok, message " in output
    vod_body = output.splitlines()[0].removeprefix("body ")
    assert json.loads(vod_body)["VideoId"] == "v-42" and json.loads(vod_body)["Size"] == 1024
    # No DirectMail rule: nothing is sent, which is not an error.
    assert "nothing was sent: no dm rule selects" in run("dm", "Deliver:SendSuccessfully")
    # Bad input is refused before the store is touched.
    refused = run("vod", "FileUploadComplete", "-f", "Size=big", code=1)
    assert "error: InvalidArgument: Size must be an integer" in refused
    assert "Usage" in run("dm", "Deliver:SendFailed", "-f", "status", code=2)
    assert run("dm", "Deliver:SendFailed", "--dry-run").startswith("env_id=")

    fresh_server.start()
    account = Account(fresh_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    my_queue = account.get_queue("MyQueue")
    my_queue.set_encoding(False)
    assert receive(my_queue) == compact(VISION_EXAMPLE)
    callbacks = account.get_queue("vod-callbacks")
    callbacks.set_encoding(False)
    assert receive(callbacks) == vod_body


def test_default_rule_catches_the_rest_and_a_missing_topic_loses_the_event(
    tmp_path: Path,
) -> None:
    """In process: DirectMail's default rule takes what no other rule selected; a rule
    whose own topic was deleted loses the event, and the report says so (§1.1)."""

    async def scenario() -> None:
        settings = load_settings(None, data_dir=tmp_path / "data")
        async with running(settings) as app:
            for name in ("catch-all", "failures"):
                await app.queues.create_queue(name, {})
            await app.topics.create_topic("failed-deliveries", {})
            await app.rules.create(
                {
                    "ProductName": "dm",
                    "RuleName": "DefaultEnRule",
                    "EventTypes": '["Default"]',
                    "MatchRules": '[[{"Name":"mns-en-reserved-default"}]]',
                    "Endpoint": '{"EndpointType":"queue","EndpointValue":"catch-all"}',
                }
            )
            await app.rules.create(
                {
                    "ProductName": "DirectMail",
                    "RuleName": "failures",
                    "EventTypes": '["Deliver:SendFailed"]',
                    "MatchRules": '[[{"Prefix":""}]]',
                    "Endpoint": '{"EndpointType":"topic","EndpointValue":"failed-deliveries"}',
                }
            )
            ids = await app.emitter.emit("dm", "Deliver:SendSuccessfully", {"env_id": "1"})
            assert len(ids) == 1
            (received,) = await app.queues.receive("catch-all", 1, 0)
            # The id is the topic message's; the queue's copy has its own, as in MNS.
            assert received.message.message_id != ids[0]
            assert received.message.body.startswith("env_id=1&")

            report = await app.emitter.deliver("dm", "Deliver:SendFailed", {})
            assert [p.rule_name for p in report.publications] == ["failures"]
            assert report.message_ids and not report.failed

            await app.topics.delete_topic("failed-deliveries")
            report = await app.emitter.deliver("dm", "Deliver:SendFailed", {})
            (lost,) = report.publications
            assert lost.message_id is None and str(lost.error).startswith("TopicNotExist")
            assert report.failed and report.message_ids == []

    asyncio.run(scenario())
