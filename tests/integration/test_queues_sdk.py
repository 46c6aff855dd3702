"""Every queue and message operation, driven by the official `aliyun-mns-sdk` against a
real `tidings serve` process."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from typing import Any

import pytest
from mns.account import Account
from mns.message_property import (
    MessagePropertyValue,
    MessageSystemPropertyValue,
    PropertyType,
    SystemPropertyType,
)
from mns.mns_common import RequestInfo
from mns.mns_exception import MNSServerException
from mns.queue import Message, Queue, QueueMeta

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def make_queue(account: Account, name: str, **meta: Any) -> Queue:
    queue = account.get_queue(name)
    queue.create(QueueMeta(**meta))
    return queue


def error_of(call: Any, *args: Any) -> MNSServerException:
    with pytest.raises(MNSServerException) as caught:
        call(*args)
    return caught.value


# -- queue management ------------------------------------------------------------------


def test_create_is_201_then_204_for_same_attributes_and_409_for_different(
    account: Account, queue_name: str, server: ServerProcess
) -> None:
    queue = account.get_queue(queue_name)
    url = queue.create(QueueMeta(vis_timeout=60))
    assert url == f"{server.mns_url}/queues/{queue_name}"
    assert queue.create(QueueMeta(vis_timeout=60)) == url
    error = error_of(queue.create, QueueMeta(vis_timeout=61))
    assert error.type == "QueueAlreadyExist"


def test_attributes_round_trip_and_set_changes_only_what_is_given(
    account: Account, queue_name: str
) -> None:
    queue = make_queue(
        account,
        queue_name,
        vis_timeout=60,
        max_msg_size=2048,
        msg_ttl=120,
        delay_sec=3,
        polling_wait_sec=5,
        logging_enabled=True,
    )
    meta = queue.get_attributes()
    assert (meta.queue_name, meta.visibility_timeout, meta.maximum_message_size) == (
        queue_name,
        60,
        2048,
    )
    assert (meta.message_retention_period, meta.delay_seconds, meta.polling_wait_seconds) == (
        120,
        3,
        5,
    )
    assert meta.logging_enabled is True
    assert meta.create_time > 1_600_000_000
    queue.set_attributes(QueueMeta(delay_sec=0))
    meta = queue.get_attributes()
    assert (meta.delay_seconds, meta.visibility_timeout) == (0, 60)
    assert meta.last_modify_time >= meta.create_time


def test_counters_report_active_inactive_and_delayed(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    queue.send_message(Message("now"))
    queue.send_message(Message("soon"))
    queue.send_message(Message("later", delay_seconds=60))
    queue.receive_message(0)
    meta = queue.get_attributes()
    assert (meta._active_messages, meta._inactive_messages, meta._delay_messages) == (1, 1, 1)


def test_delete_queue_discards_messages_and_is_idempotent(
    account: Account, queue_name: str
) -> None:
    queue = make_queue(account, queue_name)
    queue.send_message(Message("gone"))
    queue.delete()
    queue.delete()
    assert error_of(queue.get_attributes).type == "QueueNotExist"
    make_queue(account, queue_name)
    assert error_of(queue.receive_message, 0).type == "MessageNotExist"


def test_list_queue_pages_with_prefix_and_marker(account: Account, queue_name: str) -> None:
    names = [f"{queue_name}-{i}" for i in range(5)]
    for name in names:
        make_queue(account, name)
    urls, marker = account.list_queue(prefix=queue_name, ret_number=2)
    seen = list(urls)
    assert len(urls) == 2 and marker
    while marker:
        urls, marker = account.list_queue(prefix=queue_name, ret_number=2, marker=marker)
        seen += urls
    assert [u.rsplit("/", 1)[1] for u in seen] == sorted(names)


def test_list_queue_with_meta(account: Account, queue_name: str) -> None:
    from mns.mns_request import ListQueueRequest, ListQueueResponse

    make_queue(account, queue_name, vis_timeout=45)
    request = ListQueueRequest(queue_name, -1, "", with_meta=True)
    response = ListQueueResponse()
    account.mns_client.list_queue(request, response)
    (meta,) = response.queuemeta_list
    assert meta["QueueName"] == queue_name
    assert meta["VisibilityTimeout"] == "45"


def test_account_attributes_and_open_service(account: Account) -> None:
    from mns.account import AccountMeta

    account.set_attributes(AccountMeta(logging_bucket="my-log-bucket"))
    assert account.get_attributes().logging_bucket == "my-log-bucket"
    account.set_attributes(AccountMeta())
    assert account.get_attributes().logging_bucket == "my-log-bucket"
    assert account.open_service().oder_id  # sic: the SDK spells it so


# -- sending and receiving -------------------------------------------------------------


def test_send_receive_delete_with_base64_encoding(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    sent = queue.send_message(Message("Grüße, 世界"))
    encoded = base64.b64encode("Grüße, 世界".encode()).decode()
    assert sent.message_body_md5 == md5_upper(encoded)
    received = queue.receive_message(0)
    assert received.message_body == "Grüße, 世界".encode()
    assert received.message_id == sent.message_id
    assert received.dequeue_count == 1
    assert received.enqueue_time <= received.first_dequeue_time < received.next_visible_time
    queue.delete_message(received.receipt_handle)
    assert error_of(queue.receive_message, 0).type == "MessageNotExist"


def test_send_receive_without_encoding_keeps_text_verbatim(
    account: Account, queue_name: str
) -> None:
    queue = make_queue(account, queue_name)
    queue.set_encoding(False)
    body = "<xml attr=\"1\"> & 'quotes' </xml>"
    sent = queue.send_message(Message(body))
    assert sent.message_body_md5 == md5_upper(body)
    received = queue.receive_message(0)
    assert received.message_body == body
    assert received.message_body_md5 == md5_upper(body)


def test_priority_first_then_enqueue_order(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    queue.set_encoding(False)
    for body, priority in [("p8-a", 8), ("p1", 1), ("p8-b", 8), ("p16", 16), ("p2", 2)]:
        queue.send_message(Message(body, priority=priority))
    bodies = [m.message_body for m in queue.batch_receive_message(16, 0)]
    assert bodies == ["p1", "p2", "p8-a", "p8-b", "p16"]


def test_message_delay_hides_until_due(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    queue.send_message(Message("delayed", delay_seconds=1))
    assert error_of(queue.peek_message).type == "MessageNotExist"
    started = time.monotonic()
    received = queue.receive_message(5)
    assert 0.5 < time.monotonic() - started < 3
    assert received.message_body == b"delayed"


def test_queue_default_delay_applies_when_message_sets_none(
    account: Account, queue_name: str
) -> None:
    queue = make_queue(account, queue_name, delay_sec=60)
    queue.send_message(Message("default delay"))
    queue.send_message(Message("no delay", delay_seconds=0))
    assert queue.receive_message(0).message_body == b"no delay"
    assert error_of(queue.receive_message, 0).type == "MessageNotExist"


def test_visibility_timeout_redelivers_with_new_handle(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name, vis_timeout=1)
    queue.send_message(Message("again"))
    first = queue.receive_message(0)
    second = queue.receive_message(5)
    assert second.message_id == first.message_id
    assert second.dequeue_count == 2
    assert second.first_dequeue_time == first.first_dequeue_time
    assert second.receipt_handle != first.receipt_handle
    assert error_of(queue.delete_message, first.receipt_handle).type == "ReceiptHandleError"
    queue.delete_message(second.receipt_handle)


def test_change_visibility_issues_new_handle_and_retimes(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name, vis_timeout=60)
    queue.send_message(Message("retime"))
    received = queue.receive_message(0)
    changed = queue.change_message_visibility(received.receipt_handle, 1)
    assert changed.receipt_handle != received.receipt_handle
    assert int(changed.next_visible_time) < received.next_visible_time  # the SDK keeps a str
    error = error_of(queue.change_message_visibility, received.receipt_handle, 5)
    assert error.type == "ReceiptHandleError"
    again = queue.receive_message(5)
    assert again.message_id == received.message_id


def test_delete_of_deleted_message_is_message_not_exist(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    queue.send_message(Message("once"))
    handle = queue.receive_message(0).receipt_handle
    queue.delete_message(handle)
    assert error_of(queue.delete_message, handle).type == "MessageNotExist"


def test_peek_does_not_change_state(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    queue.set_encoding(False)
    sent = queue.send_message(Message("look"))
    for _ in range(2):
        peeked = queue.peek_message()
        assert (peeked.message_id, peeked.message_body, peeked.dequeue_count) == (
            sent.message_id,
            "look",
            0,
        )
    assert queue.receive_message(0).dequeue_count == 1
    assert error_of(queue.peek_message).type == "MessageNotExist"


def test_batch_peek(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    queue.batch_send_message([Message(f"m{i}") for i in range(5)])
    peeked = queue.batch_peek_message(3)
    assert [m.message_body for m in peeked] == [b"m0", b"m1", b"m2"]
    assert len(queue.batch_peek_message(16)) == 5


def test_user_and_system_properties_round_trip(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    message = Message("with properties")
    message.add_user_property("k", MessagePropertyValue(PropertyType.STRING, "v"))
    message.add_user_property("n", MessagePropertyValue(PropertyType.NUMBER, 5))
    message.add_user_property("flag", MessagePropertyValue(PropertyType.BOOLEAN, True))
    message.add_user_property("blob", MessagePropertyValue(PropertyType.BINARY, b"\x00\x01"))
    message.system_properties["traceparent"] = MessageSystemPropertyValue(
        SystemPropertyType.STRING, "00-abc-01"
    )
    queue.send_message(message)
    received = queue.receive_message(0)
    user = received.get_user_properties()
    assert user["k"].get_raw_value() == "v"
    assert str(user["n"].get_raw_value()) == "5"
    assert user["blob"].get_binary_value() == b"\x00\x01"
    assert received.get_system_properties()["traceparent"].get_raw_value() == "00-abc-01"


def test_message_group_id_is_echoed(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    # The SDK drops MessageGroupId from single-send results; batch send keeps it.
    (sent,) = queue.batch_send_message([Message("grouped", message_group_id="g1")])
    assert sent.message_group_id == "g1"
    assert queue.receive_message(0).message_group_id == "g1"


def test_user_request_id_header_is_accepted(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    queue.send_message(Message("traced"), req_info=RequestInfo("my-req-1"))
    assert queue.receive_message(0).message_body == b"traced"


def test_maximum_message_size_is_enforced_on_the_wire_text(
    account: Account, queue_name: str
) -> None:
    queue = make_queue(account, queue_name, max_msg_size=1024)
    queue.set_encoding(False)
    queue.send_message(Message("x" * 1024))
    assert error_of(queue.send_message, Message("x" * 1025)).type == "InvalidArgument"


# -- batches ---------------------------------------------------------------------------


def test_batch_send_receive_delete(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    sent = queue.batch_send_message([Message(f"b{i}") for i in range(16)])
    assert len(sent) == 16
    received = queue.batch_receive_message(16, 1)
    assert sorted(m.message_body for m in received) == sorted(f"b{i}".encode() for i in range(16))
    assert {m.message_id for m in received} == {m.message_id for m in sent}
    queue.batch_delete_message([m.receipt_handle for m in received])
    assert queue.get_attributes()._inactive_messages == 0


def test_batch_send_partial_failure_keeps_the_good_entries(
    account: Account, queue_name: str
) -> None:
    queue = make_queue(account, queue_name, max_msg_size=1024)
    queue.set_encoding(False)
    error = error_of(
        queue.batch_send_message, [Message("ok-1"), Message("x" * 2000), Message("ok-2")]
    )
    assert error.type == "InvalidArgument"
    assert error.request_id
    entries = error.sub_errors
    assert [bool(e.get("ErrorCode")) for e in entries] == [False, True, False]
    assert entries[0]["MessageBodyMD5"] == md5_upper("ok-1")
    bodies = {m.message_body for m in queue.batch_receive_message(16, 0)}
    assert bodies == {"ok-1", "ok-2"}


def test_batch_delete_partial_failure_lists_only_failed_handles(
    account: Account, queue_name: str
) -> None:
    queue = make_queue(account, queue_name)
    queue.batch_send_message([Message("a"), Message("b")])
    first, second = queue.batch_receive_message(2, 0)
    queue.delete_message(first.receipt_handle)
    error = error_of(
        queue.batch_delete_message, [first.receipt_handle, second.receipt_handle, "garbage"]
    )
    failed = {e["ReceiptHandle"]: e["ErrorCode"] for e in error.sub_errors}
    assert failed == {first.receipt_handle: "MessageNotExist", "garbage": "ReceiptHandleError"}
    assert error_of(queue.receive_message, 0).type == "MessageNotExist"


# -- long polling ----------------------------------------------------------------------


def test_long_poll_times_out_with_message_not_exist(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name)
    started = time.monotonic()
    assert error_of(queue.receive_message, 2).type == "MessageNotExist"
    assert 1.8 < time.monotonic() - started < 3.5


def test_long_poll_returns_as_soon_as_a_message_arrives(
    account: Account, queue_name: str, server: ServerProcess
) -> None:
    queue = make_queue(account, queue_name)

    def send_later() -> None:
        time.sleep(0.5)
        other = Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET).get_queue(queue_name)
        other.send_message(Message("wake up"))

    sender = threading.Thread(target=send_later)
    sender.start()
    started = time.monotonic()
    received = queue.batch_receive_message(16, 20)
    elapsed = time.monotonic() - started
    sender.join()
    assert [m.message_body for m in received] == [b"wake up"]
    assert 0.4 < elapsed < 2.0


def test_queue_polling_wait_seconds_is_the_default_wait(account: Account, queue_name: str) -> None:
    queue = make_queue(account, queue_name, polling_wait_sec=1)
    started = time.monotonic()
    assert error_of(queue.receive_message).type == "MessageNotExist"
    assert time.monotonic() - started > 0.8


# -- retention and dead letters --------------------------------------------------------


def test_retention_expires_messages_in_any_state_on_a_fast_clock(tmp_path: Any) -> None:
    """With --clock-speed 60, a minute of retention passes in a second."""
    fast = ServerProcess(tmp_path / "fast", ["--clock-speed", "60"]).start()
    try:
        account = Account(fast.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        queue = make_queue(account, "expiring", msg_ttl=60, vis_timeout=30)
        queue.send_message(Message("one"))
        queue.send_message(Message("two"))
        queue.receive_message(0)
        time.sleep(1.5)
        meta = queue.get_attributes()
        assert (meta._active_messages, meta._inactive_messages) == (0, 0)
        assert error_of(queue.receive_message, 0).type == "MessageNotExist"
    finally:
        fast.stop()


def test_dead_letter_policy_from_the_cli_moves_messages(tmp_path: Any) -> None:
    import subprocess
    import sys

    data = tmp_path / "dlq"
    env = ServerProcess(data).env()

    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "tidings", *args, "--data-dir", str(data)]
        return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout

    cli("queue", "create", "dead")
    cli("queue", "create", "work", "--visibility-timeout", "1", "--dead-letter-queue", "dead",
        "--max-receive-count", "2")  # fmt: skip
    server = ServerProcess(data).start()
    try:
        account = Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        work, dead = account.get_queue("work"), account.get_queue("dead")
        sent = work.send_message(Message("poison"))
        assert work.receive_message(0).dequeue_count == 1
        assert work.receive_message(3).dequeue_count == 2
        time.sleep(1.1)
        assert error_of(work.receive_message, 0).type == "MessageNotExist"
        moved = dead.receive_message(0)
        assert moved.message_body == b"poison"
        system = moved.get_system_properties()
        assert system["DLQOriginMessageId"].get_raw_value() == sent.message_id
        assert system["DLQSourceArn"].get_raw_value().endswith(":/queues/work")
    finally:
        server.stop()


def test_a_stale_handle_never_matches_a_later_message(account: Account, queue_name: str) -> None:
    """Deleting twice (a retry) must not remove the next message that reuses storage."""
    queue = make_queue(account, queue_name)
    queue.send_message(Message("A"))
    first = queue.receive_message(0).receipt_handle
    queue.delete_message(first)
    queue.send_message(Message("B"))
    second = queue.receive_message(0).receipt_handle
    assert second != first
    assert error_of(queue.delete_message, first).type in ("MessageNotExist", "ReceiptHandleError")
    queue.delete_message(second)


def test_a_recreated_queue_rejects_handles_of_its_predecessor(
    account: Account, queue_name: str
) -> None:
    queue = make_queue(account, queue_name)
    queue.send_message(Message("old"))
    stale = queue.receive_message(0).receipt_handle
    queue.delete()
    make_queue(account, queue_name)
    queue.send_message(Message("new"))
    fresh = queue.receive_message(0).receipt_handle
    assert fresh != stale
    assert error_of(queue.delete_message, stale).type == "ReceiptHandleError"
    queue.delete_message(fresh)
