"""`tidings rule ...` on a real data dir, through the same RuleService as the control plane.

The CLI runs in-process (CliRunner) on a temporary data dir; commands are written as
they would be typed. The last test starts a real `tidings serve` on that same data dir and
proves the CLI and the server share the rules: a rule created by the CLI delivers an
`oss2` upload's event into its queue, read back with `aliyun-mns-sdk`; a rule created
with the control-plane SDK is listed by the CLI; a rule the CLI creates or deletes while
the server runs takes effect at once (within the server's one-second rule cache).
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import oss2
import pytest
from alibabacloud_mns_open20220119 import models
from click.testing import CliRunner, Result
from mns.account import Account
from mns.mns_exception import MNSServerException

from tests.integration.control_plane_support import client_for
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ACCOUNT_ID, ServerProcess
from tidings.app import running
from tidings.cli import cli
from tidings.cli.rule import parse_match
from tidings.config import load_settings
from tidings.events.oss_event import EVENT_STATUS_OK

# The CLI acts as the server's account, so queue ARNs and bucket owners agree.
CLI_ENV = {"COLUMNS": "200", "TIDINGS_ACCOUNT_ID": ACCOUNT_ID}
# The server re-reads rules every second; allow a loaded machine more.
RULE_CACHE_WAIT = 5.0


def run(data: Path, command: str, *extra: str, ok: bool = True) -> Result:
    """`tidings COMMAND EXTRA... --data-dir DATA` in-process; `ok`: must it exit 0?

    COMMAND is split like a shell line; EXTRA arguments are passed as they are.
    """
    args = [*shlex.split(command), *extra, "--data-dir", str(data)]
    result = CliRunner(env=CLI_ENV).invoke(cli, args)
    assert (result.exit_code == 0) == ok, (result.exit_code, result.output, result.exception)
    if ok:
        assert result.exception is None, result.exception
    return result


def out(data: Path, command: str, *extra: str) -> str:
    """The output of a command that must succeed."""
    return run(data, command, *extra).output


def refused(data: Path, command: str, *extra: str) -> tuple[str, str]:
    """A service refusal: exit status 1 and one `error: CODE: message` line."""
    result = run(data, command, *extra, ok=False)
    assert result.exit_code == 1, result.output
    found = re.fullmatch(r"error: ([A-Za-z.]+): (.+)\n", result.output)
    assert found is not None, result.output
    return found.group(1), found.group(2)


def usage_error(data: Path, command: str, *extra: str) -> str:
    """A CLI usage error (exit status 2): its output."""
    result = run(data, command, *extra, ok=False)
    assert result.exit_code == 2, result.output
    return result.output


def rules_json(data: Path, options: str = "") -> list[dict[str, Any]]:
    """`rule list --json`: ListEventRules' PageData items."""
    listed: list[dict[str, Any]] = json.loads(out(data, f"rule list --json {options}"))
    return listed


def topic_names(data: Path) -> list[str]:
    """Every topic of the data dir, read through the services."""

    async def go() -> list[str]:
        async with running(load_settings(None, data_dir=data)) as app:
            topics, _ = await app.topics.list_topics()
            return [topic.name for topic in topics]

    return asyncio.run(go())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir with the queue `events`, which the rules here deliver to."""
    data = tmp_path / "data"
    run(data, "queue create events")
    return data


# ---------------------------------------------------------------------------------------
# --match syntax


def test_match_syntax() -> None:
    # A prefix and a suffix make one description (one of the five); repeats start another.
    assert parse_match("prefix=photos/,suffix=.jpg") == [{"Prefix": "photos/", "Suffix": ".jpg"}]
    assert parse_match("prefix=a/,prefix=a/b/") == [{"Prefix": "a/"}, {"Prefix": "a/b/"}]
    assert parse_match("name=b/k") == [{"Name": "b/k"}]
    # Negated fields and names stand alone. Keys may hold commas: a comma splits only
    # where another field starts.
    assert parse_match("prefix=b/,suffix=.jpg,!prefix=b/tmp/,name=b/x,y.jpg") == [
        {"Prefix": "b/", "Suffix": ".jpg"},
        {"Prefix": "b/tmp/", "MatchState": False},
        {"Name": "b/x,y.jpg"},
    ]
    # Field names are case-insensitive; values are taken verbatim (spaces are key chars).
    assert parse_match("Prefix = a/ , SUFFIX=.txt") == [{"Prefix": " a/ ", "Suffix": ".txt"}]
    assert parse_match("prefix=") == [{"Prefix": ""}]


def test_bad_match_is_a_usage_error(data: Path) -> None:
    output = usage_error(data, "rule create r --event-type PutObject --match prefx=a/ --queue q")
    assert "'prefx=a/' is not a field" in output
    output = usage_error(data, "rule create r --event-type PutObject --match photos/ --queue q")
    assert "'photos/' is not a field: use prefix=P" in output


# ---------------------------------------------------------------------------------------
# create / list / show / delete


def test_create_list_show_delete(data: Path) -> None:
    created = out(
        data,
        "rule create photos-created --event-type PutObject"
        " --event-type PostObject,CompleteMultipartUpload"
        " --match prefix=photo-archive/uploads/,suffix=.jpg --match name=photo-archive/cover.png"
        " --queue events --http https://hooks.example.com/oss",
    )
    found = re.search(r"publishes to topic (mns-en-topics-oss-photos-created-(\d+)) ", created)
    assert found is not None, created
    topic, digits = found.groups()
    # One subscription per endpoint, queues first, named as the cloud names them.
    assert (
        f"subscription mns-en-subs-oss-photos-created-1-{digits} -> "
        f"acs:mns:cn-hangzhou:{ACCOUNT_ID}:queues/events" in created
    )
    assert f"mns-en-subs-oss-photos-created-2-{digits} -> https://hooks.example.com/oss" in created

    (listed,) = rules_json(data)
    assert listed["RuleName"] == "photos-created" and listed["ProductName"] == "oss"
    assert listed["EventTypes"] == ["PutObject", "PostObject", "CompleteMultipartUpload"]
    assert listed["MatchRules"] == [
        [{"Prefix": "photo-archive/uploads/", "Suffix": ".jpg", "MatchState": True}],
        [{"Name": "photo-archive/cover.png", "MatchState": True}],
    ]
    assert listed["Endpoint"] == {"EndpointType": "queue", "EndpointValue": "events"}
    assert listed["Subscriptions"] == [
        {"EndpointType": "queue", "EndpointValue": "events"},
        {"EndpointType": "http", "EndpointValue": "https://hooks.example.com/oss"},
    ]
    assert listed["TopicName"] == topic
    assert json.loads(out(data, "rule show photos-created --json")) == listed

    table = out(data, "rule list")
    # The table writes match rules as --match takes them.
    for text in (
        "photos-created",
        "PostObject",
        "prefix=photo-archive/uploads/,suffix=.jpg",
        "name=photo-archive/cover.png",
        "queue:events",
        "https://hooks.example.com/oss",
        topic,
    ):
        assert text in table, (text, table)
    assert "photos-created" not in out(data, "rule list --product vod")

    shown = out(data, "rule show photos-created")
    assert re.search(r"match +prefix=photo-archive/uploads/,suffix=\.jpg\n +name=photo", shown)
    assert f"topic        {topic} (created for the rule)" in shown
    assert shown.count("(SIMPLIFIED, EXPONENTIAL_DECAY_RETRY)") == 2
    assert topic in topic_names(data)

    deleted = out(data, "rule delete photos-created")
    assert f"rule photos-created deleted, with its topic {topic}" in deleted
    assert rules_json(data) == []
    assert topic not in topic_names(data)  # the topic and its subscriptions went too
    code, message = refused(data, "rule show photos-created")
    assert code == "EventRuleNotExist" and "'photos-created'" in message
    assert refused(data, "rule delete photos-created")[0] == "EventRuleNotExist"


def test_match_json_and_the_round_trip(data: Path) -> None:
    sent = [
        [
            {"Prefix": "logs/", "Suffix": ".gz"},
            {"Prefix": "logs/tmp/", "Suffix": ".gz", "MatchState": False},
        ],
        [{"Name": "acs:oss:cn-hangzhou:1:logs/x"}],
    ]
    run(
        data,
        "rule create from-json --event-type ObjectRemovedGroup --queue events",
        "--match-json",
        json.dumps(sent),
    )
    (listed,) = rules_json(data)
    # Echoed exactly as sent (the ARN before a Name kept), MatchState filled in.
    assert listed["MatchRules"] == [
        [
            {"Prefix": "logs/", "Suffix": ".gz", "MatchState": True},
            {"Prefix": "logs/tmp/", "Suffix": ".gz", "MatchState": False},
        ],
        [{"Name": "acs:oss:cn-hangzhou:1:logs/x", "MatchState": True}],
    ]
    # NOT(prefix AND suffix) has no --match spelling; the table shows it bracketed.
    table = out(data, "rule list")
    assert "prefix=logs/,suffix=.gz,!(prefix=logs/tmp/,suffix=.gz)" in table
    assert "name=acs:oss:cn-hangzhou:1:logs/x" in table
    run(data, "rule delete from-json")

    # Otherwise what `rule show` prints can be typed back in, to the same MatchRules.
    sent = [
        [{"Prefix": "logs/", "Suffix": ".gz"}, {"Prefix": "logs/tmp/", "MatchState": False}],
        [{"Name": "logs/x,y"}],
    ]
    run(
        data,
        "rule create first --event-type PutObject --queue events",
        "--match-json",
        json.dumps(sent),
    )
    shown = out(data, "rule show first")
    lines = re.findall(r"^(?:match)? +(\S+)$", shown.split("endpoints")[0], re.MULTILINE)
    assert lines == ["prefix=logs/,suffix=.gz,!prefix=logs/tmp/", "name=logs/x,y"]
    before = rules_json(data)[0]["MatchRules"]
    run(data, "rule delete first")
    matches = [arg for line in lines for arg in ("--match", line)]
    run(data, "rule create second --event-type PutObject --queue events", *matches)
    assert rules_json(data)[0]["MatchRules"] == before

    code, message = refused(
        data, "rule create bad-json --event-type PutObject --match-json '[[{' --queue events"
    )
    assert code == "MatchRuleInvalid" and "not valid JSON" in message
    both = "rule create both --event-type PutObject --match prefix= --match-json [] --queue q"
    assert "not both" in usage_error(data, both)


def test_default_rule(data: Path) -> None:
    # The console's spelling works as such...
    created = out(
        data,
        "rule create DefaultEnRule --event-type Default --match name=mns-en-reserved-default"
        " --queue events",
    )
    assert "mns-en-topics-oss-DefaultEnRule-" in created
    (listed,) = rules_json(data)
    assert listed["EventTypes"] == ["Default"]
    assert listed["MatchRules"] == [[{"Name": "mns-en-reserved-default", "MatchState": True}]]
    # ...and the shortcut makes the same rule (so here: it already exists).
    code, _ = refused(data, "rule create --default --queue events")
    assert code == "EventRuleAlreadyExist"
    run(data, "rule delete DefaultEnRule")
    run(data, "rule create --default --queue events")
    (again,) = rules_json(data)
    assert (again["EventTypes"], again["MatchRules"]) == (["Default"], listed["MatchRules"])
    # The default rule overlaps nothing: a catch-all beside it is fine.
    run(
        data,
        "rule create everything --event-type ObjectCreatedGroup --match prefix= --queue events",
    )

    output = usage_error(data, "rule create other --default --queue events")
    assert "--default creates DefaultEnRule" in output
    output = usage_error(data, "rule create --default --event-type PutObject --queue events")
    assert "takes no --event-type" in output
    # The reserved type and resource are the default rule's alone.
    code, message = refused(
        data, "rule create sneaky --event-type Default --match prefix=x/ --queue events"
    )
    assert code == "EventTypeInvalid" and "reserved for the default rule" in message
    code, message = refused(
        data,
        "rule create sneaky --event-type PutObject --match name=mns-en-reserved-default"
        " --queue events",
    )
    assert code == "MatchRuleInvalid" and "reserved for the default rule" in message
    assert [r["RuleName"] for r in rules_json(data)] == ["DefaultEnRule", "everything"]


def test_refusals(data: Path) -> None:
    def attempt(arguments: str) -> tuple[str, str]:
        return refused(data, f"rule create {arguments}")

    valid = "--event-type PutObject --match prefix=b/ --queue events"
    code, message = attempt(f"1photos {valid}")
    assert code == "EventRuleNameInvalid" and "starting with a letter" in message
    code, message = attempt(f"{'a' * 86} {valid}")
    assert code == "EventRuleNameInvalid" and "at most 85" in message
    code, message = attempt("typo --event-type PutObjekt --match prefix=b/ --queue events")
    assert code == "EventTypeInvalid" and "Did you mean 'PutObject'?" in message
    code, message = attempt(
        "r --event-type PutObject,ObjectCreatedGroup --match prefix=b/ --queue events"
    )
    assert (
        code == "EventTypeInvalid" and "'ObjectCreatedGroup' already covers 'PutObject'" in message
    )
    code, message = attempt("r --event-type PutObject --match prefix=b/ --queue missing")
    assert code == "EndpointInvalid" and "missing does not exist" in message
    code, message = attempt("r --event-type PutObject --match prefix=b/ --queue events --topic t")
    assert code == "EndpointInvalid" and "exclusive" in message
    code, message = attempt("r --event-type PutObject --match prefix=b/ --topic no-such-topic")
    assert code == "EndpointInvalid" and "no-such-topic does not exist" in message
    code, message = attempt("r --event-type PutObject --match prefix=b/ --http ftp://h/x")
    assert code == "EndpointInvalid" and "http:// or https://" in message
    six = " ".join(f"--http https://h{i}.example.com/" for i in range(6))
    code, message = attempt(f"r --event-type PutObject --match prefix=b/ {six}")
    assert code == "EndpointInvalid" and "at most 5" in message
    code, message = attempt(f"r --product s3 {valid}")
    assert code == "InvalidProductName" and "use one of oss" in message
    code, message = attempt(
        "r --event-type PutObject --match prefix=b/ --match prefix=b/x/ --queue events"
    )
    assert code == "MatchRuleInvalid" and "overlap" in message
    code, message = attempt("r --event-type PutObject --match name=bucket-only --queue events")
    assert code == "MatchRuleInvalid" and "has no '/'" in message
    code, message = attempt(
        "r --event-type PutObject --match prefix=b/,suffix=.a,suffix=.b --queue events"
    )
    assert code == "MatchRuleInvalid" and "can match no resource" in message
    six = " ".join(f"--match prefix=b{i}/" for i in range(6))
    code, message = attempt(f"r --event-type PutObject {six} --queue events")
    assert code == "MatchRuleInvalid" and "at most 5" in message

    # Usage errors are the CLI's own (exit status 2), raised before the store is opened.
    for arguments, why in [
        ("--match prefix=b/ --queue events", "--event-type"),
        ("--event-type PutObject --queue events", "--match"),
        ("--event-type PutObject --match prefix=b/", "--queue, --http or --topic"),
        ("--event-type , --match prefix=b/ --queue events", "--event-type"),
    ]:
        assert why in usage_error(data, f"rule create r {arguments}")
    assert "NAME" in usage_error(data, f"rule create {valid}")

    # None of it left a rule or a topic behind.
    assert rules_json(data) == []
    assert topic_names(data) == []


def test_overlap_names_the_rule_the_descriptions_and_the_types(data: Path) -> None:
    run(
        data,
        "rule create jpgs --event-type PutObject,CopyObject"
        " --match prefix=photos/,suffix=.jpg --queue events",
    )
    code, message = refused(
        data,
        "rule create uploads --event-type ObjectCreatedGroup --match prefix=photos/uploads/"
        " --queue events",
    )
    assert code == "EventRuleConflict"
    assert "existing rule 'jpgs'" in message
    assert '{"Prefix":"photos/uploads/"}' in message
    assert '{"Prefix":"photos/","Suffix":".jpg"}' in message
    assert "'photos/uploads/x.jpg'" in message  # an object both would match
    assert "both rules select PutObject, CopyObject" in message
    # Disjoint objects, or no shared event type: both fine.
    run(
        data,
        "rule create pngs --event-type PutObject --match prefix=photos/,suffix=.png --queue events",
    )
    run(data, "rule create reads --event-type GetObject --match prefix=photos/ --queue events")
    assert [r["RuleName"] for r in rules_json(data)] == ["jpgs", "pngs", "reads"]


def test_eleventh_rule_is_refused(data: Path) -> None:
    for number in range(10):
        run(
            data,
            f"rule create r{number} --event-type PutObject --match prefix=b{number}/"
            " --queue events",
        )
    code, message = refused(
        data, "rule create r10 --event-type PutObject --match prefix=b10/ --queue events"
    )
    assert code == "EventRuleLimitExceeded" and "already has 10 rules" in message
    # Another product has a limit of its own.
    run(
        data,
        "rule create mail --product directmail --event-type Deliver:SendFailed"
        " --match prefix= --queue events",
    )
    assert len(rules_json(data, "--product oss")) == 10
    assert [r["RuleName"] for r in rules_json(data, "--product dm")] == ["mail"]
    assert len(topic_names(data)) == 11  # no orphan topic of the refused rule


def test_topic_endpoint_is_the_users(data: Path) -> None:
    async def make_topic() -> None:
        async with running(load_settings(None, data_dir=data)) as app:
            await app.topics.create_topic("my-topic", {})

    asyncio.run(make_topic())
    created = out(
        data, "rule create to-topic --event-type DeleteObject --match prefix=b/ --topic my-topic"
    )
    assert "publishes to topic my-topic (yours)" in created
    (listed,) = rules_json(data)
    assert listed["Endpoint"] == {"EndpointType": "topic", "EndpointValue": "my-topic"}
    shown = out(data, "rule show to-topic")
    assert "topic        my-topic (yours)" in shown
    assert "no subscriptions" in shown  # the user subscribes to their own topic
    assert "with its topic" not in out(data, "rule delete to-topic")
    assert topic_names(data) == ["my-topic"]  # a user's topic stays

    # A rule whose topic was deleted loses its events; `show` says so.
    run(data, "rule create to-topic --event-type DeleteObject --match prefix=b/ --topic my-topic")

    async def drop_topic() -> None:
        async with running(load_settings(None, data_dir=data)) as app:
            await app.topics.delete_topic("my-topic")

    asyncio.run(drop_topic())
    assert "the topic my-topic does not exist" in out(data, "rule show to-topic")


# ---------------------------------------------------------------------------------------
# The CLI and a running server share the rules


def receive_event(account: Account, queue: str, wait: int = 10) -> dict[str, Any]:
    """The next event of `queue` (deleted), as the JSON the SDK Base64-decoded."""
    message = account.get_queue(queue).receive_message(wait_seconds=wait)
    account.get_queue(queue).delete_message(message.receipt_handle)
    (event,) = json.loads(message.message_body)["events"]
    assert isinstance(event, dict)
    return event


def assert_empty(account: Account, queue: str) -> None:
    with pytest.raises(MNSServerException) as caught:
        account.get_queue(queue).receive_message(wait_seconds=1)
    assert caught.value.type == "MessageNotExist"


@pytest.mark.slow
def test_cli_rules_drive_a_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "queue create photo-events")
    run(
        data,
        "rule create photos-created --event-type PutObject"
        " --match prefix=photo-archive/uploads/,suffix=.jpg --match name=photo-archive/cover.png"
        " --queue photo-events",
    )
    server = ServerProcess(data).start()
    try:
        account = Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        auth = oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        bucket = oss2.Bucket(auth, server.oss_url, "photo-archive")
        bucket.create_bucket()

        body = b"\xff\xd8 not really a jpeg " * 40
        put = bucket.put_object("uploads/2026/cat.jpg", body)
        assert put.headers["x-oss-event-status"] == EVENT_STATUS_OK
        event = receive_event(account, "photo-events")
        assert event["eventName"] == "ObjectCreated:PutObject"
        assert event["eventSource"] == "acs:oss"
        assert event["oss"]["ruleId"] == "photos-created"
        assert event["oss"]["bucket"] == {
            "arn": f"acs:oss:cn-hangzhou:{ACCOUNT_ID}:photo-archive",
            "name": "photo-archive",
            "ownerIdentity": ACCOUNT_ID,
        }
        assert event["oss"]["object"] == {
            "deltaSize": len(body),
            "eTag": put.etag,
            "key": "uploads/2026/cat.jpg",
            "size": len(body),
        }
        assert event["responseElements"]["requestId"] == put.request_id
        assert event["userIdentity"]["principalId"] == ACCOUNT_ID

        # The second AND-list (a full name) is OR-ed in; other keys match nothing.
        bucket.put_object("cover.png", b"png")
        assert receive_event(account, "photo-events")["oss"]["object"]["key"] == "cover.png"
        missed = bucket.put_object("uploads/2026/cat.png", b"png")
        assert "x-oss-event-status" not in missed.headers
        assert_empty(account, "photo-events")

        # A rule created with the control-plane SDK is the CLI's to list and show.
        client = client_for(server)
        client.create_event_rule(
            models.CreateEventRuleRequest(
                product_name="oss",
                rule_name="photo-reads",
                event_types=["GetObject"],
                match_rules=[[models.EventMatchRule(prefix="photo-archive/")]],
                endpoint=models.CreateEventRuleRequestEndpoint(
                    endpoint_type="queue", endpoint_value="photo-events"
                ),
            )
        )
        assert [rule["RuleName"] for rule in rules_json(data)] == ["photos-created", "photo-reads"]
        assert "prefix=photo-archive/" in out(data, "rule show photo-reads")
        bucket.get_object("cover.png").read()
        read = receive_event(account, "photo-events")
        assert read["eventName"] == "ObjectDownloaded:GetObject"
        assert (read["oss"]["ruleId"], read["oss"]["object"]["readTo"]) == ("photo-reads", 3)

        # The CLI checks a new rule against the rules the server committed...
        code, message = refused(
            data,
            "rule create png-uploads --event-type PutObject"
            " --match prefix=photo-archive/,suffix=.png --queue photo-events",
        )
        assert code == "EventRuleConflict" and "'photo-archive/cover.png'" in message
        # ...and the server applies one the CLI made within its rule-cache second.
        run(
            data,
            "rule create png-uploads --event-type PutObject"
            " --match prefix=photo-archive/uploads/,suffix=.png --queue photo-events",
        )
        deadline = time.monotonic() + RULE_CACHE_WAIT
        while True:
            put = bucket.put_object("uploads/dog.png", b"woof")
            if "x-oss-event-status" in put.headers:
                break
            assert time.monotonic() < deadline, "the CLI's rule was not applied"
            time.sleep(0.1)
        # The attempts before it matched nothing and produced nothing: exactly one event.
        event = receive_event(account, "photo-events")
        assert (event["oss"]["ruleId"], event["responseElements"]["requestId"]) == (
            "png-uploads",
            put.request_id,
        )
        assert_empty(account, "photo-events")
        got = client.get_event_rule(
            models.GetEventRuleRequest(product_name="oss", rule_name="png-uploads")
        ).body.data
        assert got.topic_name.startswith("mns-en-topics-oss-png-uploads-")

        # A rule the CLI deletes stops matching as soon.
        run(data, "rule delete png-uploads")
        deadline = time.monotonic() + RULE_CACHE_WAIT
        while "x-oss-event-status" in bucket.put_object("uploads/cat.png", b"meow").headers:
            assert time.monotonic() < deadline, "the deleted rule still matches"
            receive_event(account, "photo-events")
            time.sleep(0.1)
        assert_empty(account, "photo-events")
    finally:
        server.stop()
