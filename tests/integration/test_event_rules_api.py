"""CreateEventRule / GetEventRule / ListEventRules / DeleteEventRule through the official
`alibabacloud-mns-open20220119` SDK: every limit and refusal, and what is echoed back.

Every refusal must be a 4xx with the API's JSON envelope (`Success: false`, a `Code`
and a `Message` saying what to change, raised by the SDK as `ClientException`) and must
leave nothing half-created: the rule list and the `mns-en-topics-*` topics (listed with
the data-plane SDK) are the same before and after.

The stateless validation refusals run on the session server with names of their own.
Rule limits, cross-rule overlap and paging depend on every rule of the server, so those
tests share a module server of their own whose rule table they control completely.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_mns_open20220119 import models as m
from alibabacloud_mns_open20220119.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from mns.account import Account
from mns.queue import QueueMeta
from mns.topic import TopicMeta

from tests.integration.control_plane_support import REGION, client_for
from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ACCOUNT_ID, ServerProcess

AUTO_TOPIC_PREFIX = "mns-en-topics-"
DEFAULT_RULE = "DefaultEnRule"
DEFAULT_RESOURCE = "mns-en-reserved-default"
# The products whose rules the server keeps (ListEventRules items do not name theirs).
PRODUCTS = ("oss", "dm", "vod", "viapi")


def unique(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- talking to the server ------------------------------------------------------------------


@dataclass
class Plane:
    """A server's control-plane and data-plane SDK clients."""

    server: ServerProcess
    control: Client
    account: Account

    def create(
        self,
        name: str | None,
        event_types: list[str] | None,
        match_rules: list[list[dict[str, Any]]] | None,
        *,
        product: str = "oss",
        endpoint: tuple[str, str] | None = None,
        endpoints: list[tuple[str, str]] | None = None,
        client_token: str | None = None,
    ) -> Any:
        """CreateEventRule; `match_rules` in the API's JSON spelling."""
        request = m.CreateEventRuleRequest(
            product_name=product,
            rule_name=name,
            event_types=event_types,
            match_rules=None
            if match_rules is None
            else [[m.EventMatchRule().from_map(a) for a in conj] for conj in match_rules],
        )
        if endpoint is not None:
            request.endpoint = m.CreateEventRuleRequestEndpoint(
                endpoint_type=endpoint[0], endpoint_value=endpoint[1]
            )
        if client_token is not None:
            request.client_token = client_token
        if endpoints is not None:
            request.endpoints = [
                m.CreateEventRuleRequestEndpoints(endpoint_type=kind, endpoint_value=value)
                for kind, value in endpoints
            ]
        return self.control.create_event_rule(request).body

    def get(self, name: str, product: str = "oss") -> Any:
        request = m.GetEventRuleRequest(product_name=product, rule_name=name)
        return self.control.get_event_rule(request).body.data

    def delete(self, name: str, product: str = "oss") -> None:
        request = m.DeleteEventRuleRequest(product_name=product, rule_name=name)
        self.control.delete_event_rule(request)

    def list(self, **filters: Any) -> Any:
        return self.control.list_event_rules(m.ListEventRulesRequest(**filters)).body.data

    def all_rules(self) -> list[tuple[str, str]]:
        """Every (product, rule) of the server, from every page of ListEventRules."""
        found: list[tuple[str, str]] = []
        for product in PRODUCTS:
            page = 1
            while True:
                data = self.list(product_name=product, page_num=page, page_size=50)
                found += [(product, item.rule_name) for item in data.page_data]
                if page >= data.pages:
                    break
                page += 1
        return sorted(found)

    def auto_topics(self) -> list[str]:
        urls, _ = self.account.list_topic(prefix=AUTO_TOPIC_PREFIX)
        return sorted(url.rsplit("/", 1)[-1] for url in urls)

    def snapshot(self) -> tuple[list[tuple[str, str]], list[str]]:
        """What a refusal must leave unchanged: every rule and every automatic topic."""
        return self.all_rules(), self.auto_topics()

    def refused(self, call: Callable[[], Any], code: str, *fragments: str) -> str:
        """Run a call that must be refused with `code`, change nothing, and say `fragments`."""
        before = self.snapshot()
        with pytest.raises(ClientException) as caught:
            call()
        error = caught.value
        assert error.code == code, error.data
        assert error.data["Success"] is False
        assert error.data["Code"] == code
        assert error.data["Status"] == "Failed"
        assert re.fullmatch(r"[0-9A-F-]{36}", error.data["RequestId"])
        status = (
            404
            if code.endswith("NotExist")
            else 409
            if code.endswith(("Exist", "Conflict"))
            else 400
        )
        assert error.status_code == status
        message = error.data["Message"]
        for fragment in fragments:
            assert fragment in message, (fragment, message)
        assert self.snapshot() == before
        return str(message)


def plane_of(server: ServerProcess) -> Plane:
    return Plane(
        server, client_for(server), Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    )


@pytest.fixture
def plane(server: ServerProcess) -> Plane:
    """The session server's clients."""
    return plane_of(server)


@pytest.fixture
def queues(plane: Plane) -> Iterator[list[str]]:
    """Two queues of the session server to use as endpoints."""
    names = [unique("q"), unique("q")]
    for name in names:
        plane.account.get_queue(name).create(QueueMeta())
    yield names
    for name in names:
        plane.account.get_queue(name).delete()


@pytest.fixture(scope="module")
def own_server() -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory() as directory:
        process = ServerProcess(Path(directory) / "data").start()
        yield process
        process.stop()


@pytest.fixture
def own(own_server: ServerProcess) -> Iterator[Plane]:
    """The module server's clients; the test starts with no rule, and leaves none."""
    plane = plane_of(own_server)
    assert plane.all_rules() == []
    yield plane
    for product, name in plane.all_rules():
        plane.delete(name, product)


@pytest.fixture
def own_queue(own: Plane) -> Iterator[str]:
    name = unique("q")
    own.account.get_queue(name).create(QueueMeta())
    yield name
    own.account.get_queue(name).delete()


# -- refusals of one request on its own ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A CreateEventRule request that must be refused, built from the test's queues."""

    name: str
    code: str
    fragments: tuple[str, ...]
    request: Callable[[str, list[str]], dict[str, Any]]  # (bucket prefix, queues) -> kwargs


def ok(prefix: str, queues: list[str], **changes: Any) -> dict[str, Any]:
    """A valid request, with `changes` applied."""
    request: dict[str, Any] = {
        "name": unique(),
        "event_types": ["PutObject"],
        "match_rules": [[{"Prefix": prefix}]],
        "endpoint": ("queue", queues[0]),
    }
    request.update(changes)
    return request


def atoms(prefix: str, count: int) -> list[list[dict[str, Any]]]:
    return [[{"Prefix": f"{prefix}{n}/"}] for n in range(count)]


CASES = [
    Case("no-rule-name", "MissingRuleName", ("RuleName",), lambda p, q: ok(p, q, name=None)),
    Case("no-event-types-parameter", "MissingEventTypes", ("EventTypes",),
         lambda p, q: ok(p, q, event_types=None)),
    Case("no-match-rules-parameter", "MissingMatchRules", ("MatchRules",),
         lambda p, q: ok(p, q, match_rules=None)),
    Case("name-starts-with-digit", "EventRuleNameInvalid", ("'1rule'", "starting with a letter"),
         lambda p, q: ok(p, q, name="1rule")),
    Case("name-underscore", "EventRuleNameInvalid", ("'bad_name'",),
         lambda p, q: ok(p, q, name="bad_name")),
    Case("name-86-characters", "EventRuleNameInvalid", ("86", "85"),
         lambda p, q: ok(p, q, name="a" * 86)),
    Case("name-empty", "EventRuleNameInvalid", ("empty",), lambda p, q: ok(p, q, name="")),
    Case("unknown-event-type", "EventTypeInvalid", ("'PutObjects'", "Did you mean 'PutObject'"),
         lambda p, q: ok(p, q, event_types=["PutObject", "PutObjects"])),
    Case("misspelt-emitted-name", "EventTypeInvalid", ("'ObjectCreate:PutObject'",),
         lambda p, q: ok(p, q, event_types=["ObjectCreate:PutObject"])),
    Case("no-event-types", "EventTypeInvalid", ("empty",),
         lambda p, q: ok(p, q, event_types=[])),
    Case("repeated-event-type", "EventTypeInvalid", ("list it once",),
         lambda p, q: ok(p, q, event_types=["PutObject", "PutObject"])),
    Case("group-and-member", "EventTypeInvalid", ("'ObjectCreatedGroup' already covers",),
         lambda p, q: ok(p, q, event_types=["ObjectCreatedGroup", "PutObject"])),
    Case("default-type-in-a-rule", "EventTypeInvalid", ("reserved for the default rule",),
         lambda p, q: ok(p, q, event_types=["Default"])),
    Case("empty-resource-description", "MatchRuleInvalid", ("empty",),
         lambda p, q: ok(p, q, match_rules=[[{}]])),
    Case("no-match-rules", "MatchRuleInvalid", ("empty",),
         lambda p, q: ok(p, q, match_rules=[])),
    Case("empty-and-list", "MatchRuleInvalid", ("empty",),
         lambda p, q: ok(p, q, match_rules=[[{"Prefix": p}], []])),
    Case("blank-prefix", "MatchRuleInvalid", ("blank",),
         lambda p, q: ok(p, q, match_rules=[[{"Prefix": "   "}]])),
    Case("name-with-prefix", "MatchRuleInvalid", ("takes no Prefix or Suffix",),
         lambda p, q: ok(p, q, match_rules=[[{"Name": f"{p}k", "Prefix": p}]])),
    Case("name-without-key", "MatchRuleInvalid", ("has no '/'",),
         lambda p, q: ok(p, q, match_rules=[[{"Name": "bucket-only"}]])),
    Case("overlapping-prefixes", "MatchRuleInvalid", ("overlap", '"Prefix":"', "a/b/"),
         lambda p, q: ok(p, q, match_rules=[[{"Prefix": f"{p}a/"}], [{"Prefix": f"{p}a/b/"}]])),
    Case("prefix-overlaps-suffix", "MatchRuleInvalid", ("overlap", '{"Suffix":".jpg"}'),
         lambda p, q: ok(p, q, match_rules=[[{"Prefix": p}], [{"Suffix": ".jpg"}]])),
    Case("same-description-twice", "MatchRuleInvalid", ("overlap",),
         lambda p, q: ok(p, q, match_rules=[[{"Name": f"{p}k"}], [{"Name": f"{p}k"}]])),
    Case("self-contradictory-and", "MatchRuleInvalid", ("can match no resource",),
         lambda p, q: ok(p, q, match_rules=[[{"Prefix": f"{p}a/"}, {"Prefix": f"{p}b/"}]])),
    Case("six-resource-descriptions", "MatchRuleInvalid", ("6 resource descriptions", "at most 5"),
         lambda p, q: ok(p, q, match_rules=atoms(p, 6))),
    Case("six-atoms-in-one-and", "MatchRuleInvalid", ("at most 5",),
         lambda p, q: ok(p, q, match_rules=[[{"Prefix": p}] + [{"Suffix": "x"}] * 5])),
    Case("reserved-resource", "MatchRuleInvalid", ("reserved for the default rule",),
         lambda p, q: ok(p, q, match_rules=[[{"Name": DEFAULT_RESOURCE}]])),
    Case("no-endpoint", "EndpointInvalid", ("endpoint",), lambda p, q: ok(p, q, endpoint=None)),
    Case("six-endpoints", "EndpointInvalid", ("6 endpoints", "at most 5"),
         lambda p, q: ok(p, q, endpoint=None,
                         endpoints=[("http", f"http://127.0.0.1:9/{n}") for n in range(6)])),
    Case("topic-with-a-queue", "EndpointInvalid", ("exclusive",),
         lambda p, q: ok(p, q, endpoint=None, endpoints=[("queue", q[0]), ("topic", "t")])),
    Case("both-endpoint-forms", "EndpointInvalid", ("either Endpoint or Endpoints",),
         lambda p, q: ok(p, q, endpoints=[("queue", q[1])])),
    Case("same-endpoint-twice", "EndpointInvalid", ("listed twice",),
         lambda p, q: ok(p, q, endpoint=None, endpoints=[("queue", q[0]), ("queue", q[0])])),
    Case("missing-queue", "EndpointInvalid", ("does not exist",),
         lambda p, q: ok(p, q, endpoint=("queue", unique("no-such-queue")))),
    Case("second-queue-missing", "EndpointInvalid", ("does not exist",),
         lambda p, q: ok(p, q, endpoint=None,
                         endpoints=[("queue", q[0]), ("queue", unique("no-such-queue"))])),
    Case("missing-topic", "EndpointInvalid", ("does not exist",),
         lambda p, q: ok(p, q, endpoint=("topic", unique("no-such-topic")))),
    Case("bad-url", "EndpointInvalid", ("http:// or https://",),
         lambda p, q: ok(p, q, endpoint=None, endpoints=[("http", "ftp://example.com/x")])),
    Case("unknown-endpoint-type", "EndpointInvalid", ("'email'",),
         lambda p, q: ok(p, q, endpoint=("email", "a@example.com"))),
    Case("unknown-product", "InvalidProductName", ("'s3'",), lambda p, q: ok(p, q, product="s3")),
    Case("default-rule-with-types", "EventTypeInvalid", ("single event type 'Default'",),
         lambda p, q: ok(p, q, name=DEFAULT_RULE, match_rules=[[{"Name": DEFAULT_RESOURCE}]])),
    Case("default-rule-with-resources", "MatchRuleInvalid", (DEFAULT_RESOURCE,),
         lambda p, q: ok(p, q, name=DEFAULT_RULE, event_types=["Default"])),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_invalid_rule_is_refused_and_nothing_is_created(
    plane: Plane, queues: list[str], case: Case
) -> None:
    """Each invalid CreateEventRule is refused with its documented code and a message
    naming the culprit; no rule and no automatic topic is left behind."""
    request = case.request(f"{unique('b')}/", queues)
    name = request.pop("name")
    plane.refused(lambda: plane.create(name, **request), case.code, *case.fragments)


def test_limits_are_inclusive(plane: Plane, queues: list[str]) -> None:
    """An 85-character name, 5 resource descriptions and 5 endpoints are accepted."""
    prefix = f"{unique('b')}/"
    name = "a" + uuid.uuid4().hex[:8] + "-" * 2 + "x" * 74
    assert len(name) == 85
    endpoints = [("queue", queues[0]), ("queue", queues[1])]
    endpoints += [("http", f"http://127.0.0.1:9/hook{n}") for n in range(3)]
    assert plane.create(name, ["PutObject"], atoms(prefix, 5), endpoints=endpoints).data == name
    try:
        data = plane.get(name)
        assert len(data.match_rules) == 5
        assert [(s.endpoint_type, s.endpoint_value) for s in data.subscriptions] == endpoints
    finally:
        plane.delete(name)


def test_get_and_delete_of_an_unknown_rule_are_not_found(plane: Plane) -> None:
    """GetEventRule and DeleteEventRule of a rule that does not exist answer
    EventRuleNotExist (404), naming the rule."""
    name = unique("ghost")
    plane.refused(lambda: plane.get(name), "EventRuleNotExist", f"'{name}'")
    plane.refused(lambda: plane.delete(name), "EventRuleNotExist", f"'{name}'")


def test_get_echoes_the_rule_as_created(plane: Plane, queues: list[str]) -> None:
    """GetEventRule returns EventTypes in the order sent and MatchRules unchanged: every
    field sent comes back with its value (an `acs:oss:` ARN prefix included); fields not
    sent come back with their defaults (`Prefix`/`Suffix` "", `MatchState` true)."""
    bucket = unique("b")
    sent = [
        [{"Prefix": f"{bucket}/photos/", "Suffix": ".jpg"}],
        [{"Name": f"acs:oss:{REGION}:{ACCOUNT_ID}:{bucket}/cover.png", "MatchState": True}],
        [{"Prefix": f"{bucket}/tmp/"}, {"Suffix": ".log", "MatchState": False}],
        [{"Prefix": f"acs:oss:{REGION}:{ACCOUNT_ID}:{bucket}/docs/"}],
    ]
    types = ["PutObject", "ObjectRemovedGroup", "ObjectCreated:AppendObject"]
    name = unique("echo")
    plane.create(name, types, sent, endpoint=("queue", queues[0]))
    try:
        data = plane.get(name)
        assert data.rule_name == name
        assert data.event_types == types
        echoed = [[a.to_map() for a in conj] for conj in data.match_rules]
        defaults = {"Prefix": "", "Suffix": "", "MatchState": True}
        for sent_conj, echoed_conj in zip(sent, echoed, strict=True):
            for sent_atom, echoed_atom in zip(sent_conj, echoed_conj, strict=True):
                assert {k: echoed_atom[k] for k in sent_atom} == sent_atom
                extra = {k: v for k, v in echoed_atom.items() if k not in sent_atom}
                assert extra == {k: v for k, v in defaults.items() if k in extra}
        assert (data.endpoint.endpoint_type, data.endpoint.endpoint_value) == ("queue", queues[0])
        assert [(s.endpoint_type, s.endpoint_value) for s in data.subscriptions] == [
            ("queue", queues[0])
        ]
        assert re.fullmatch(rf"mns-en-topics-oss-{name}-\d+", data.topic_name)
        assert data.topic_name in plane.auto_topics()
    finally:
        plane.delete(name)
    assert data.topic_name not in plane.auto_topics()


def test_duplicate_name_is_refused_and_the_original_kept(plane: Plane, queues: list[str]) -> None:
    """A second rule of the same name is refused (EventRuleAlreadyExist, 409) even when it
    is otherwise different; the first rule and its topic stay exactly as they were."""
    name = unique("twice")
    bucket = unique("b")
    plane.create(name, ["PutObject"], [[{"Prefix": f"{bucket}/a/"}]], endpoint=("queue", queues[0]))
    try:
        before = plane.get(name).to_map()
        plane.refused(
            lambda: plane.create(
                name, ["GetObject"], [[{"Prefix": f"{bucket}/b/"}]], endpoint=("queue", queues[1])
            ),
            "EventRuleAlreadyExist",
            f"'{name}'",
        )
        assert plane.get(name).to_map() == before
    finally:
        plane.delete(name)


def test_a_create_repeated_with_its_client_token_answers_the_rule_it_created(
    plane: Plane, queues: list[str]
) -> None:
    """A retried CreateEventRule (same ClientToken, same request) succeeds with the rule
    the first one created, creating nothing more; the token with another request is
    refused (IdempotentParameterMismatch) and creates nothing."""
    name = unique("retried")
    token = str(uuid.uuid4())
    match = [[{"Prefix": f"{unique('b')}/"}]]
    endpoint = ("queue", queues[0])
    assert (
        plane.create(name, ["PutObject"], match, endpoint=endpoint, client_token=token).data == name
    )
    try:
        first = plane.get(name).to_map()
        before = plane.snapshot()
        again = plane.create(name, ["PutObject"], match, endpoint=endpoint, client_token=token)
        assert again.data == name
        assert plane.snapshot() == before and plane.get(name).to_map() == first
        plane.refused(
            lambda: plane.create(
                unique("other"), ["GetObject"], match, endpoint=endpoint, client_token=token
            ),
            "IdempotentParameterMismatch",
            token,
            f"'{name}'",
        )
        plane.refused(  # without the token, the name is taken as before
            lambda: plane.create(name, ["PutObject"], match, endpoint=endpoint),
            "EventRuleAlreadyExist",
        )
    finally:
        plane.delete(name)


# -- rules against each other: limits and overlap (module server) ----------------------------


def test_eleventh_rule_is_refused(own: Plane, own_queue: str) -> None:
    """A product holds at most 10 rules, the default rule included: the 11th is refused
    with EventRuleLimitExceeded and creates nothing; other products have their own 10;
    deleting one makes room again."""
    own.create(
        DEFAULT_RULE, ["Default"], [[{"Name": DEFAULT_RESOURCE}]], endpoint=("queue", own_queue)
    )
    for n in range(9):
        own.create(f"r{n}", ["PutObject"], [[{"Prefix": f"b{n}/"}]], endpoint=("queue", own_queue))
    assert len(own.auto_topics()) == 10
    own.refused(
        lambda: own.create(
            "r10", ["PutObject"], [[{"Prefix": "b10/"}]], endpoint=("queue", own_queue)
        ),
        "EventRuleLimitExceeded",
        "already has 10 rules",
    )
    vod = (["FileUploadComplete"], [[{"Prefix": ""}]])
    own.create("vod-rule", *vod, product="vod", endpoint=("queue", own_queue))
    own.delete("r0")
    own.create("r10", ["PutObject"], [[{"Prefix": "b10/"}]], endpoint=("queue", own_queue))
    assert len([rule for rule in own.all_rules() if rule[0] == "oss"]) == 10


@dataclass(frozen=True)
class Pair:
    """An existing rule and a new one: (event types, match rules) each."""

    name: str
    existing: tuple[list[str], list[list[dict[str, Any]]]]
    new: tuple[list[str], list[list[dict[str, Any]]]]
    shared: str = ""  # the shared event types the refusal names ("" when accepted)
    descriptions: tuple[str, str] = ("", "")  # (new, existing) as the refusal renders them


CONFLICTS = [
    Pair("same-prefix", (["PutObject"], [[{"Prefix": "b/photos/"}]]),
         (["PutObject", "GetObject"], [[{"Prefix": "b/photos/"}]]),
         "PutObject", ('{"Prefix":"b/photos/"}', '{"Prefix":"b/photos/"}')),
    Pair("name-inside-prefix", (["PutObject"], [[{"Prefix": "b/photos/"}]]),
         (["ObjectCreatedGroup"], [[{"Name": "b/photos/cat.jpg"}]]),
         "PutObject", ('{"Name":"b/photos/cat.jpg"}', '{"Prefix":"b/photos/"}')),
    Pair("suffix-meets-prefix", (["GetObject"], [[{"Prefix": "b/", "Suffix": ".jpg"}]]),
         (["ObjectDownloadedGroup"], [[{"Suffix": ".jpg"}]]),
         "GetObject", ('{"Suffix":".jpg"}', '{"Prefix":"b/","Suffix":".jpg"}')),
    Pair("wildcard-covers-type", (["ObjectRemoved:*"], [[{"Prefix": "b/x/"}]]),
         (["DeleteObject", "PutObject"], [[{"Prefix": "b/"}]]),
         "DeleteObject", ('{"Prefix":"b/"}', '{"Prefix":"b/x/"}')),
    Pair("two-groups", (["ObjectCreatedGroup"], [[{"Prefix": "b"}]]),
         (["ObjectCreatedGroup"], [[{"Prefix": "bucket-2/"}]]),
         "ObjectCreatedGroup", ('{"Prefix":"bucket-2/"}', '{"Prefix":"b"}')),
    Pair("and-list-meets-prefix", (["PutObject"], [[{"Prefix": "b/data/"}, {"Suffix": ".csv"}]]),
         (["PutObject"], [[{"Name": "b/x"}], [{"Prefix": "b/data/2024/"}]]),
         "PutObject", ('{"Prefix":"b/data/2024/"}', '[{"Prefix":"b/data/"},{"Suffix":".csv"}]')),
]  # fmt: skip

COMPATIBLE = [
    Pair("disjoint-types", (["PutObject"], [[{"Prefix": "b/"}]]),
         (["GetObject", "DeleteObject"], [[{"Prefix": "b/"}]])),
    Pair("disjoint-prefixes", (["PutObject"], [[{"Prefix": "b/a/"}]]),
         (["PutObject"], [[{"Prefix": "b/b/"}]])),
    Pair("disjoint-suffixes", (["ObjectCreatedGroup"], [[{"Prefix": "b/", "Suffix": ".jpg"}]]),
         (["PutObject"], [[{"Prefix": "b/", "Suffix": ".png"}]])),
    Pair("name-outside-prefix", (["PutObject"], [[{"Prefix": "b/a"}]]),
         (["PutObject"], [[{"Name": "b/b"}]])),
    Pair("other-bucket", (["PutObject"], [[{"Prefix": "b/"}]]),
         (["PutObject"], [[{"Prefix": "b2/"}]])),
    Pair("negated-suffix",
         (["PutObject"], [[{"Prefix": "b/"}, {"Suffix": ".log", "MatchState": False}]]),
         (["PutObject"], [[{"Prefix": "b/", "Suffix": ".log"}]])),
    Pair("default-rule", (["PutObject"], [[{"Prefix": ""}]]),
         (["Default"], [[{"Name": DEFAULT_RESOURCE}]])),
]  # fmt: skip


@pytest.mark.parametrize("pair", CONFLICTS, ids=[pair.name for pair in CONFLICTS])
def test_overlapping_rules_sharing_an_event_type_are_refused(
    own: Plane, own_queue: str, pair: Pair
) -> None:
    """A rule that can match an object an existing rule matches, with an event type in
    common, is refused with EventRuleConflict naming the existing rule, both resource
    descriptions and the shared event types; nothing is created."""
    own.create("existing", *pair.existing, endpoint=("queue", own_queue))
    new_description, existing_description = pair.descriptions
    message = own.refused(
        lambda: own.create("newcomer", *pair.new, endpoint=("queue", own_queue)),
        "EventRuleConflict",
        "'existing'",
        f"resource description {new_description} and the existing rule's {existing_description}",
        f"both rules select {pair.shared}.",
    )
    assert "newcomer" not in message


@pytest.mark.parametrize("pair", COMPATIBLE, ids=[pair.name for pair in COMPATIBLE])
def test_rules_that_cannot_share_an_event_coexist(own: Plane, own_queue: str, pair: Pair) -> None:
    """Rules over disjoint objects, or with no event type in common, are both accepted
    (and so is the default rule beside any rule)."""
    own.create("existing", *pair.existing, endpoint=("queue", own_queue))
    name = DEFAULT_RULE if pair.new[0] == ["Default"] else "newcomer"
    own.create(name, *pair.new, endpoint=("queue", own_queue))
    assert {rule for _, rule in own.all_rules()} == {"existing", name}


# -- listing --------------------------------------------------------------------------------


def test_list_event_rules_pages_and_filters(own: Plane, own_queue: str) -> None:
    """ListEventRules pages with PageSize clamped to 10..50 and PageNum to >= 1, and
    filters by ProductName, RuleName, TopicName, ResourceName and Subscription."""
    topic = unique("t")
    own.account.get_topic(topic).create(TopicMeta())
    try:
        for n in range(10):
            resources = [[{"Prefix": f"bucket{n}/"}]]
            own.create(f"oss-{n:02d}", ["PutObject"], resources, endpoint=("queue", own_queue))
        for n, kind in enumerate(["TranscodeComplete", "SnapshotComplete", "TranscodeComplete"]):
            own.create(
                f"vod-{n}",
                [kind],
                [[{"Name": f"video-{n}"}]],
                product="vod",
                endpoint=("topic", topic),
            )
        everything = own.list(page_size=1)
        assert (everything.page_num, everything.page_size) == (1, 10)
        assert (everything.total, everything.pages, everything.size) == (13, 2, 10)
        second = own.list(page_num=2, page_size=10)
        assert second.size == 3
        names = [i.rule_name for i in everything.page_data] + [
            i.rule_name for i in second.page_data
        ]
        assert names == [f"oss-{n:02d}" for n in range(10)] + ["vod-0", "vod-1", "vod-2"]
        clamped = own.list(page_num=0, page_size=1000)
        assert (clamped.page_num, clamped.page_size, clamped.size) == (1, 50, 13)
        beyond = own.list(page_num=5, page_size=10)
        assert (beyond.total, beyond.size, beyond.page_data) == (13, 0, [])

        def listed(**filters: Any) -> list[str]:
            return [item.rule_name for item in own.list(page_size=50, **filters).page_data]

        assert listed(product_name="vod") == ["vod-0", "vod-1", "vod-2"]
        assert listed(product_name="oss", rule_name="oss-04") == ["oss-04"]
        assert listed(rule_name="nothing") == []
        auto = own.get("oss-07").topic_name
        assert listed(topic_name=auto) == ["oss-07"]
        assert listed(topic_name=topic) == ["vod-0", "vod-1", "vod-2"]
        assert listed(resource_name="bucket5") == ["oss-05"]
        queue_endpoint = m.ListEventRulesRequestSubscription(
            endpoint_type="queue", endpoint_value=own_queue
        )
        assert listed(subscription=queue_endpoint) == [f"oss-{n:02d}" for n in range(10)]
        topic_endpoint = m.ListEventRulesRequestSubscription(
            endpoint_type="topic", endpoint_value=topic
        )
        assert listed(subscription=topic_endpoint, product_name="vod") == [
            "vod-0",
            "vod-1",
            "vod-2",
        ]
        item = own.list(rule_name="oss-02").page_data[0].to_map()
        assert item["EventTypes"] == ["PutObject"]
        assert item["MatchRules"] == [[{"Prefix": "bucket2/", "Suffix": "", "MatchState": True}]]
        assert item["Subscriptions"] == [{"EndpointType": "queue", "EndpointValue": own_queue}]
        assert json.dumps(item)  # plain JSON all the way down
    finally:
        for product, name in own.all_rules():
            own.delete(name, product)
        own.account.get_topic(topic).delete()


def test_a_rule_with_an_endpoint_subscribe_would_refuse_is_refused_up_front(
    server: ServerProcess,
) -> None:
    """An HTTP endpoint Subscribe refuses (credentials in the URL) is refused when the
    rule is created, not on every upload that matches it later."""
    with pytest.raises(ClientException) as caught:
        client_for(server).create_event_rule(
            m.CreateEventRuleRequest(
                product_name="oss",
                rule_name=f"creds-{uuid.uuid4().hex[:8]}",
                event_types=["PutObject"],
                match_rules=[[m.EventMatchRule(prefix=f"b-{uuid.uuid4().hex[:8]}/")]],
                endpoints=[
                    m.CreateEventRuleRequestEndpoints(
                        endpoint_type="http", endpoint_value="http://u:p@127.0.0.1:1/x"
                    )
                ],
            )
        )
    assert caught.value.code == "EndpointInvalid"
