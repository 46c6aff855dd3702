"""The `mns-open` 2022-01-19 control plane for topics and subscriptions, driven by the
official `alibabacloud-mns-open20220119` SDK against a real `tidings serve` process, and
checked through the data-plane SDK (`aliyun-mns-sdk`) in both directions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_mns_open20220119 import models as m
from alibabacloud_mns_open20220119.client import Client
from mns.account import Account
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMessage, TopicMeta

from tests.integration.control_plane_support import (
    REGION,
    WAIT_SECONDS,
    client_for,
    page_names,
    refusal,
    unique,
)
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ACCOUNT_ID, ServerProcess


@pytest.fixture(params=["acs3", "rpc"])
def any_control(request: pytest.FixtureRequest, server: ServerProcess) -> Client:
    """The control-plane SDK with its default signing, then with RPC signing."""
    return client_for(server, None if request.param == "acs3" else "v2")


@pytest.fixture
def control(server: ServerProcess) -> Client:
    """The control-plane SDK with its default configuration (ACS3-HMAC-SHA256)."""
    return client_for(server)


# -- topics -------------------------------------------------------------------------------


@pytest.fixture
def topic_name(account: Account) -> Iterator[str]:
    name = unique("t")
    yield name
    account.get_topic(name).delete()


def test_topic_lifecycle_and_data_plane_view(
    any_control: Client, account: Account, server: ServerProcess, topic_name: str
) -> None:
    any_control.create_topic(
        m.CreateTopicRequest(topic_name=topic_name, max_message_size=2048, enable_logging=True)
    )
    any_control.create_topic(  # identical again: fine
        m.CreateTopicRequest(topic_name=topic_name, max_message_size=2048, enable_logging=True)
    )
    data = any_control.get_topic_attributes(m.GetTopicAttributesRequest(topic_name=topic_name))
    attributes = data.body.data
    assert (attributes.topic_name, attributes.topic_type) == (topic_name, "normal")
    assert (attributes.max_message_size, attributes.logging_enabled) == (2048, True)
    assert attributes.topic_url == f"{server.mns_url}/topics/{topic_name}"
    assert attributes.message_retention_period == 86400 and attributes.message_count == 0

    meta = account.get_topic(topic_name).get_attributes()
    assert (meta.maximum_message_size, meta.logging_enabled) == (2048, True)

    any_control.set_topic_attributes(
        m.SetTopicAttributesRequest(topic_name=topic_name, max_message_size=4096)
    )
    assert account.get_topic(topic_name).get_attributes().maximum_message_size == 4096

    listed = any_control.list_topic(m.ListTopicRequest(topic_name=topic_name)).body.data
    assert page_names(listed, "topic_name") == [topic_name] and listed.total == 1

    any_control.delete_topic(m.DeleteTopicRequest(topic_name=topic_name))
    error = refusal(
        any_control.get_topic_attributes, m.GetTopicAttributesRequest(topic_name=topic_name)
    )
    assert (error.code, error.status_code) == ("TopicNotExist", 404)


def test_topic_made_on_the_data_plane_is_seen_by_the_control_plane(
    control: Client, account: Account, topic_name: str
) -> None:
    account.get_topic(topic_name).create(TopicMeta(maximum_message_size=1024))
    attributes = control.get_topic_attributes(
        m.GetTopicAttributesRequest(topic_name=topic_name)
    ).body.data
    assert attributes.max_message_size == 1024
    error = refusal(
        control.create_topic, m.CreateTopicRequest(topic_name=topic_name, max_message_size=2048)
    )
    assert (error.code, error.status_code) == ("TopicAlreadyExist", 409)


def test_list_topic_pages(control: Client) -> None:
    prefix = unique("tp")
    names = [f"{prefix}-{i:02d}" for i in range(11)]
    for name in names:
        control.create_topic(m.CreateTopicRequest(topic_name=name))
    first = control.list_topic(m.ListTopicRequest(topic_name=prefix, page_size=10)).body.data
    second = control.list_topic(
        m.ListTopicRequest(topic_name=prefix, page_size=10, page_num=2)
    ).body.data
    assert (first.total, first.page_size) == (11, 10)
    assert page_names(first, "topic_name") + page_names(second, "topic_name") == names


def test_bad_topic_requests_are_refused(control: Client) -> None:
    error = refusal(
        control.create_topic, m.CreateTopicRequest(topic_name="t-x", max_message_size=10)
    )
    assert error.code == "InvalidArgument" and "MaximumMessageSize" in error.message
    error = refusal(control.create_topic, m.CreateTopicRequest(topic_name="t-x", topic_type="fifo"))
    assert error.code == "UnsupportedOperation"
    error = refusal(control.create_topic, m.CreateTopicRequest())
    assert error.code == "MissingTopicName"


# -- subscriptions ------------------------------------------------------------------------


def test_queue_subscription_delivers_published_messages(
    any_control: Client, account: Account, topic_name: str, queue_name: str
) -> None:
    any_control.create_topic(m.CreateTopicRequest(topic_name=topic_name))
    any_control.create_queue(m.CreateQueueRequest(queue_name=queue_name))
    answer = any_control.subscribe(
        m.SubscribeRequest(
            topic_name=topic_name,
            subscription_name="to-queue",
            push_type="queue",
            # The documented ARN form; a bare queue name is accepted too.
            endpoint=f"acs:mns:{REGION}:{ACCOUNT_ID}:/queues/{queue_name}",
            notify_content_format="SIMPLIFIED",
        )
    )
    assert answer.body.data == "to-queue"

    account.get_topic(topic_name).publish_message(TopicMessage("hello from a topic"))
    queue = account.get_queue(queue_name)
    queue.set_encoding(False)
    received = queue.receive_message(WAIT_SECONDS)
    assert received.message_body == "hello from a topic"


def test_subscription_attributes_round_trip_between_planes(
    control: Client, account: Account, topic_name: str
) -> None:
    control.create_topic(m.CreateTopicRequest(topic_name=topic_name))
    control.subscribe(
        m.SubscribeRequest(
            topic_name=topic_name,
            subscription_name="web",
            push_type="http",
            endpoint="http://127.0.0.1:9/hook",
            notify_content_format="JSON",
            message_tag="urgent",
        )
    )
    shown = control.get_subscription_attributes(
        m.GetSubscriptionAttributesRequest(topic_name=topic_name, subscription_name="web")
    ).body.data
    assert (shown.subscription_name, shown.topic_name, shown.topic_owner) == (
        "web",
        topic_name,
        ACCOUNT_ID,
    )
    assert (shown.endpoint, shown.notify_content_format, shown.filter_tag) == (
        "http://127.0.0.1:9/hook",
        "JSON",
        "urgent",
    )
    assert shown.notify_strategy == "BACKOFF_RETRY"

    data_plane = account.get_topic(topic_name).get_subscription("web").get_attributes()
    assert (data_plane.endpoint, data_plane.filter_tag) == ("http://127.0.0.1:9/hook", "urgent")

    control.set_subscription_attributes(
        m.SetSubscriptionAttributesRequest(
            topic_name=topic_name,
            subscription_name="web",
            notify_strategy="EXPONENTIAL_DECAY_RETRY",
        )
    )
    data_plane = account.get_topic(topic_name).get_subscription("web").get_attributes()
    assert data_plane.notify_strategy == "EXPONENTIAL_DECAY_RETRY"

    control.unsubscribe(m.UnsubscribeRequest(topic_name=topic_name, subscription_name="web"))
    error = refusal(
        control.get_subscription_attributes,
        m.GetSubscriptionAttributesRequest(topic_name=topic_name, subscription_name="web"),
    )
    assert (error.code, error.status_code) == ("SubscriptionNotExist", 404)


def test_list_subscriptions_filters_and_sees_data_plane_subscriptions(
    control: Client, account: Account, topic_name: str
) -> None:
    account.get_topic(topic_name).create(TopicMeta())
    topic = account.get_topic(topic_name)
    topic.get_subscription("a-web").subscribe(SubscriptionMeta("http://127.0.0.1:9/a"))
    queue_endpoint = f"acs:mns:{REGION}:{ACCOUNT_ID}:queues/some-queue"
    topic.get_subscription("b-queue").subscribe(SubscriptionMeta(queue_endpoint))

    def names(**filters: Any) -> list[str]:
        request = m.ListSubscriptionByTopicRequest(topic_name=topic_name, **filters)
        data = control.list_subscription_by_topic(request).body.data
        assert data.total == len(data.page_data)
        return page_names(data, "subscription_name")

    assert names() == ["a-web", "b-queue"]
    assert names(endpoint_type="queue") == ["b-queue"]
    assert names(endpoint_value="http://127.0.0.1:9/a") == ["a-web"]
    assert names(endpoint_value="some-queue") == ["b-queue"]
    assert names(subscription_name="a-") == ["a-web"]


@pytest.mark.parametrize(
    ("changes", "code", "phrase"),
    [
        ({"topic_name": "no-such-topic"}, "TopicNotExist", "no-such-topic"),
        ({"push_type": "fc"}, "UnsupportedOperation", "PushType 'fc'"),
        ({"push_type": "carrier-pigeon"}, "InvalidArgument", "PushType 'carrier-pigeon'"),
        ({"push_type": "queue"}, "InvalidArgument", "needs a queue endpoint"),
        ({"endpoint": "ftp://x"}, "EndpointInvalid", "unknown endpoint kind"),
        ({"notify_strategy": "SOMETIMES"}, "InvalidArgument", "NotifyStrategy 'SOMETIMES'"),
        ({"push_type": "dm", "endpoint": "smq-ep:dm:1:a@b.c"}, "EndpointInvalid", "SMTP"),
        (
            {"push_type": "dm", "endpoint": f"smq-ep:dm:{ACCOUNT_ID}:__dynamic"},
            "UnsupportedOperation",
            "dynamic DirectMail",
        ),
        (
            {"dlq_policy": m.SubscribeRequestDlqPolicy(enabled=True, dead_letter_target_queue="q")},
            "UnsupportedOperation",
            "subscription DlqPolicy",
        ),
        ({"subscription_name": None}, "MissingSubscriptionName", "is mandatory"),
    ],
)
def test_bad_subscriptions_are_refused(
    control: Client, topic_name: str, changes: dict[str, Any], code: str, phrase: str
) -> None:
    control.create_topic(m.CreateTopicRequest(topic_name=topic_name))
    fields: dict[str, Any] = {
        "topic_name": topic_name,
        "subscription_name": "s",
        "push_type": "http",
        "endpoint": "http://127.0.0.1:9/hook",
        **changes,
    }
    error = refusal(control.subscribe, m.SubscribeRequest(**fields))
    assert error.code == code
    assert phrase in error.message


@pytest.fixture(scope="module")
def mail_and_sms_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a (never reached) SMTP relay and SMS gateway configured."""
    data = tmp_path_factory.mktemp("mail-sms") / "data"
    data.mkdir(parents=True)
    settings = [
        "[server]",
        'smtp_host = "127.0.0.1"',
        "smtp_port = 9",
        'sms_gateway_url = "http://127.0.0.1:9/sms"',
    ]
    (data / "tidings.toml").write_text("\n".join(settings) + "\n")
    server = ServerProcess(data).start()
    yield server
    server.stop()


def test_mail_and_sms_push_types_map_to_tidings_endpoints(
    mail_and_sms_server: ServerProcess,
) -> None:
    control = client_for(mail_and_sms_server)
    account = Account(mail_and_sms_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    topic = unique("t")
    control.create_topic(m.CreateTopicRequest(topic_name=topic))
    cases = [
        ("dm", f"smq-ep:dm:{ACCOUNT_ID}:user@example.com", "mail:directmail:user@example.com"),
        ("email", "mail:directmail:other@example.com", "mail:directmail:other@example.com"),
        ("dysms", f"smq-ep:dysms:{ACCOUNT_ID}:13800000000", "sms:directsms:13800000000"),
        ("alisms", "sms:directsms:anonymous", "sms:directsms:anonymous"),
    ]
    for index, (push_type, endpoint, stored) in enumerate(cases):
        name = f"s{index}"
        control.subscribe(
            m.SubscribeRequest(
                topic_name=topic, subscription_name=name, push_type=push_type, endpoint=endpoint
            )
        )
        meta = account.get_topic(topic).get_subscription(name).get_attributes()
        assert meta.endpoint == stored
        # Mail takes only SIMPLIFIED, so it is the default there.
        assert meta.notify_content_format == (
            "SIMPLIFIED" if push_type in ("dm", "email") else "XML"
        )
