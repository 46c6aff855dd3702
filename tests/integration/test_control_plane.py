"""The `mns-open` 2022-01-19 control plane for queues, driven by the official
`alibabacloud-mns-open20220119` SDK against a real `tidings serve` process, plus its
transport: signatures, unknown actions and versions, and the JSON envelope.

Both signing schemes the SDK can use are exercised (its default ACS3-HMAC-SHA256 and the
RPC HMAC-SHA1 of `signature_algorithm="v2"`). What the control plane creates is checked
through the data-plane SDK (`aliyun-mns-sdk`) and the reverse, and every refusal must
surface as the SDK's `ClientException` with the documented code and a helpful message.
Topics and subscriptions are in `test_control_plane_topics.py`.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from alibabacloud_mns_open20220119 import models as m
from alibabacloud_mns_open20220119.client import Client
from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
from darabonba.runtime import RuntimeOptions
from mns.account import Account
from mns.queue import Message, QueueMeta

from tests.integration.control_plane_support import (
    client_for,
    data_plane_error,
    page_names,
    refusal,
    unique,
)
from tests.support import ServerProcess


@pytest.fixture(params=["acs3", "rpc"])
def any_control(request: pytest.FixtureRequest, server: ServerProcess) -> Client:
    """The control-plane SDK with its default signing, then with RPC signing."""
    return client_for(server, None if request.param == "acs3" else "v2")


@pytest.fixture
def control(server: ServerProcess) -> Client:
    """The control-plane SDK with its default configuration (ACS3-HMAC-SHA256)."""
    return client_for(server)


# -- queues -------------------------------------------------------------------------------


def test_queue_lifecycle_and_data_plane_view(
    any_control: Client, account: Account, queue_name: str
) -> None:
    created = any_control.create_queue(
        m.CreateQueueRequest(
            queue_name=queue_name, delay_seconds=2, visibility_timeout=45, enable_logging=True
        )
    )
    assert created.status_code == 200
    body = created.body
    assert (body.code, body.status, body.success) == (200, "Success", True)
    assert body.message == "operation success" and body.request_id
    assert created.body.data.success is True

    data = any_control.get_queue_attributes(m.GetQueueAttributesRequest(queue_name=queue_name))
    attributes = data.body.data
    assert attributes.queue_name == queue_name and attributes.queue_type == "normal"
    assert (attributes.delay_seconds, attributes.visibility_timeout) == (2, 45)
    assert (attributes.maximum_message_size, attributes.message_retention_period) == (65536, 345600)
    assert attributes.logging_enabled is True and attributes.dlq_policy.enabled is False

    meta = account.get_queue(queue_name).get_attributes()
    assert (meta.delay_seconds, meta.visibility_timeout, meta.logging_enabled) == (2, 45, True)

    any_control.set_queue_attributes(
        m.SetQueueAttributesRequest(queue_name=queue_name, polling_wait_seconds=10)
    )
    meta = account.get_queue(queue_name).get_attributes()
    assert (meta.polling_wait_seconds, meta.visibility_timeout) == (10, 45)

    any_control.delete_queue(m.DeleteQueueRequest(queue_name=queue_name))
    assert data_plane_error(account.get_queue(queue_name).get_attributes) == "QueueNotExist"
    # Deleting what is gone succeeds, as DeleteQueue does on the data plane.
    any_control.delete_queue(m.DeleteQueueRequest(queue_name=queue_name))


def test_create_queue_again_is_idempotent_but_different_attributes_conflict(
    control: Client, queue_name: str
) -> None:
    request = m.CreateQueueRequest(queue_name=queue_name, delay_seconds=3)
    control.create_queue(request)
    control.create_queue(request)
    error = refusal(
        control.create_queue, m.CreateQueueRequest(queue_name=queue_name, delay_seconds=4)
    )
    assert (error.code, error.status_code) == ("QueueAlreadyExist", 409)
    assert queue_name in error.message


def test_queue_made_on_the_data_plane_is_seen_by_the_control_plane(
    control: Client, account: Account, queue_name: str
) -> None:
    account.get_queue(queue_name).create(QueueMeta(vis_timeout=77))
    account.get_queue(queue_name).send_message(Message("one"))
    attributes = control.get_queue_attributes(
        m.GetQueueAttributesRequest(queue_name=queue_name)
    ).body.data
    assert (attributes.visibility_timeout, attributes.active_messages) == (77, 1)
    listed = control.list_queue(m.ListQueueRequest(queue_name=queue_name)).body.data
    assert page_names(listed, "queue_name") == [queue_name]


def test_dead_letter_policy_moves_messages_and_can_be_cleared(
    control: Client, account: Account
) -> None:
    work, dead = unique("work"), unique("dead")
    control.create_queue(m.CreateQueueRequest(queue_name=dead))
    policy = m.CreateQueueRequestDlqPolicy(
        enabled=True, dead_letter_target_queue=dead, max_receive_count=1
    )
    control.create_queue(
        m.CreateQueueRequest(queue_name=work, visibility_timeout=1, dlq_policy=policy)
    )
    shown = control.get_queue_attributes(m.GetQueueAttributesRequest(queue_name=work)).body.data
    assert shown.dlq_policy.enabled is True
    assert (shown.dlq_policy.dead_letter_target_queue, shown.dlq_policy.max_receive_count) == (
        dead,
        "1",
    )

    sent = account.get_queue(work).send_message(Message("poison"))
    assert account.get_queue(work).receive_message(0).dequeue_count == 1
    time.sleep(1.1)
    assert data_plane_error(account.get_queue(work).receive_message, 0) == "MessageNotExist"
    moved = account.get_queue(dead).receive_message(0)
    assert moved.message_id == sent.message_id

    control.set_queue_attributes(
        m.SetQueueAttributesRequest(
            queue_name=work, dlq_policy=m.SetQueueAttributesRequestDlqPolicy(enabled=False)
        )
    )
    shown = control.get_queue_attributes(m.GetQueueAttributesRequest(queue_name=work)).body.data
    assert shown.dlq_policy.enabled is False


def test_dead_letter_policy_refusals(control: Client, queue_name: str) -> None:
    missing = m.CreateQueueRequestDlqPolicy(enabled=True, dead_letter_target_queue="no-such-q")
    error = refusal(
        control.create_queue, m.CreateQueueRequest(queue_name=queue_name, dlq_policy=missing)
    )
    assert (error.code, error.status_code) == ("QueueNotExist", 404)
    assert "dead-letter queue no-such-q does not exist" in error.message
    # Nothing half-created.
    gone = refusal(control.get_queue_attributes, m.GetQueueAttributesRequest(queue_name=queue_name))
    assert gone.code == "QueueNotExist"

    itself = m.CreateQueueRequestDlqPolicy(enabled=True, dead_letter_target_queue=queue_name)
    control.create_queue(m.CreateQueueRequest(queue_name=queue_name))
    error = refusal(
        control.set_queue_attributes,
        m.SetQueueAttributesRequest(queue_name=queue_name, dlq_policy=itself),
    )
    assert error.code == "InvalidArgument" and "own dead-letter queue" in error.message


def test_list_queue_pages_and_clamps(control: Client) -> None:
    prefix = unique("page")
    names = [f"{prefix}-{i:02d}" for i in range(12)]
    for name in names:
        control.create_queue(m.CreateQueueRequest(queue_name=name))

    def page(num: int | None, size: int | None) -> Any:
        request = m.ListQueueRequest(queue_name=prefix, page_num=num, page_size=size)
        return control.list_queue(request).body.data

    first = page(1, 5)  # below 10: clamped to 10
    assert (first.page_num, first.page_size, first.total, first.pages, first.size) == (
        1,
        10,
        12,
        2,
        10,
    )
    assert page_names(first, "queue_name") == names[:10]
    assert page_names(page(2, 5), "queue_name") == names[10:]
    assert page(None, 500).page_size == 50  # above 50: clamped to 50
    assert page(0, None).page_num == 1 and page(0, None).page_size == 20
    beyond = page(9, 10)
    assert (beyond.total, beyond.size, beyond.page_data) == (12, 0, [])
    fifo = control.list_queue(m.ListQueueRequest(queue_name=prefix, queue_type="fifo"))
    assert fifo.body.data.total == 0


@pytest.mark.parametrize(
    ("request_", "code", "phrase"),
    [
        (m.CreateQueueRequest(), "MissingQueueName", "QueueName is mandatory"),
        (m.CreateQueueRequest(queue_name="bad_name!"), "InvalidQueueName", "letters, digits"),
        (
            m.CreateQueueRequest(queue_name="ok-name", delay_seconds=999999),
            "InvalidArgument",
            "DelaySeconds should be between 0 and 604800",
        ),
        (
            m.CreateQueueRequest(queue_name="ok-name", queue_type="fifo"),
            "UnsupportedOperation",
            "QueueType 'fifo'",
        ),
        (
            m.CreateQueueRequest(queue_name="ok-name", enable_sse=True),
            "UnsupportedOperation",
            "EnableSSE",
        ),
        (
            m.CreateQueueRequest(
                queue_name="ok-name", tag=[m.CreateQueueRequestTag(key="k", value="v")]
            ),
            "UnsupportedOperation",
            "remove the Tag parameters",
        ),
    ],
)
def test_bad_queue_requests_are_refused(
    control: Client, request_: m.CreateQueueRequest, code: str, phrase: str
) -> None:
    error = refusal(control.create_queue, request_)
    assert (error.code, error.status_code) == (code, 400)
    assert phrase in error.message


def test_unknown_queue_is_refused(any_control: Client) -> None:
    error = refusal(
        any_control.get_queue_attributes, m.GetQueueAttributesRequest(queue_name="no-such-queue")
    )
    assert (error.code, error.status_code) == ("QueueNotExist", 404)
    assert "no-such-queue" in error.message
    error = refusal(
        any_control.set_queue_attributes,
        m.SetQueueAttributesRequest(queue_name="no-such-queue", delay_seconds=1),
    )
    assert error.code == "QueueNotExist"


# -- authentication and transport --------------------------------------------------------


@pytest.mark.parametrize("algorithm", [None, "v2"])
def test_wrong_secret_is_refused(server: ServerProcess, algorithm: str | None) -> None:
    client = client_for(server, algorithm, secret="not-the-secret")
    error = refusal(client.list_queue, m.ListQueueRequest())
    assert (error.code, error.status_code) == ("SignatureDoesNotMatch", 400)
    assert "check the AccessKey secret" in error.message


def test_unknown_access_key_is_refused(server: ServerProcess) -> None:
    client = client_for(server, key_id="nobody")
    error = refusal(client.list_topic, m.ListTopicRequest())
    assert (error.code, error.status_code) == ("InvalidAccessKeyId.NotFound", 404)
    assert "'nobody'" in error.message


def generic_call(client: Client, action: str, version: str = "2022-01-19") -> Any:
    """Call any action through the SDK's generic OpenAPI path (its own signer)."""
    params = Params(
        action=action,
        version=version,
        protocol="HTTPS",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    return client.call_api(params, OpenApiRequest(query={}), RuntimeOptions())


@pytest.mark.parametrize("algorithm", [None, "v2"])
def test_unknown_action_and_version_are_refused(
    server: ServerProcess, algorithm: str | None
) -> None:
    client = client_for(server, algorithm)
    error = refusal(generic_call, client, "CreateRocket")
    assert (error.code, error.status_code) == ("InvalidAction.NotFound", 404)
    assert "'CreateRocket'" in error.message and "CreateQueue" in error.message
    error = refusal(generic_call, client, "ListQueue", "2015-06-06")
    assert (error.code, error.status_code) == ("InvalidVersion", 400)
    assert "2022-01-19" in error.message


def post(server: ServerProcess, target: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        f"{server.mns_url}{target}", data=b"", headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_unsigned_control_request_gets_the_json_envelope(server: ServerProcess) -> None:
    status, content_type, body = post(server, "/?Action=ListQueue&Version=2022-01-19", {})
    assert status == 400 and content_type.startswith("application/json")
    document = json.loads(body)
    assert set(document) == {"RequestId", "HostId", "Code", "Status", "Message", "Success"}
    assert (document["Code"], document["Success"]) == ("IncompleteSignature", False)

    status, content_type, body = post(server, "/", {"x-acs-action": "ListQueue"})
    assert status == 400 and json.loads(body)["Code"] == "IncompleteSignature"


def test_post_root_without_action_stays_on_the_data_plane(server: ServerProcess) -> None:
    status, content_type, body = post(server, "/", {})
    assert content_type.startswith("text/xml")
    assert b"<Code>" in body and status >= 400


def test_data_plane_keeps_working_beside_the_control_plane(
    control: Client, account: Account, queue_name: str
) -> None:
    control.create_queue(m.CreateQueueRequest(queue_name=queue_name))
    queue = account.get_queue(queue_name)
    queue.send_message(Message("still here"))
    assert queue.receive_message(0).message_body == b"still here"
