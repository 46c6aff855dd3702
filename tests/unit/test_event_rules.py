"""Event-notification rules (`tidings.services.event_rules`), spec event-sources §1-§2.1.

Validation is pinned down by a table of CreateEventRule requests that must be refused,
each with its error code and a fragment of the message that says what to change, and a
table of requests that must be accepted. Matching is pinned down by tables of (rule,
event, resource) and by a property comparing `select_rules` with a naive model of §1.3.
Exact overlap is the subject of test_event_overlap.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.errors import ServiceError
from tidings.services.event_rules import (
    DEFAULT_EVENT_TYPE,
    DEFAULT_RESOURCE,
    DEFAULT_RULE_NAME,
    MAX_RULES_PER_PRODUCT,
    PRODUCTS,
    EventRule,
    MatchAtom,
    MatchRules,
    RuleEndpoint,
    auto_subscription_name,
    auto_topic_name,
    canonical_product,
    check_can_add,
    configured_types_covering,
    event_rule_not_exist,
    new_rule,
    parse_endpoints,
    parse_match_rules,
    rule_from_dict,
    rule_from_request,
    rule_matches,
    rule_to_dict,
    select_rules,
)

BASE = {
    "ProductName": "oss",
    "RuleName": "photos-created",
    "EventTypes": '["PutObject"]',
    "MatchRules": '[[{"Prefix":"photos/","Suffix":".jpg"}]]',
    "Endpoint": '{"EndpointType":"queue","EndpointValue":"photo-events"}',
}
QUEUE = (RuleEndpoint("queue", "q"),)


def request(**changes: str | None) -> dict[str, str]:
    """BASE with `changes` applied; a value of None removes the parameter."""
    params = dict(BASE)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return params


def endpoints_json(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"EndpointType": kind, "EndpointValue": value} for kind, value in pairs])


def default_request(**changes: str | None) -> dict[str, str]:
    reserved: dict[str, str | None] = {
        "RuleName": DEFAULT_RULE_NAME,
        "EventTypes": json.dumps([DEFAULT_EVENT_TYPE]),
        "MatchRules": json.dumps([[{"Name": DEFAULT_RESOURCE}]]),
    }
    return request(**{**reserved, **changes})


def atom(
    name: str | None = None, prefix: str = "", suffix: str = "", state: bool = True
) -> MatchAtom:
    return MatchAtom(name, prefix, suffix, state)


def rule(
    name: str,
    event_types: Sequence[str],
    match_rules: MatchRules,
    product: str = "oss",
) -> EventRule:
    return new_rule(product, name, event_types, match_rules, QUEUE)


def default_rule(product: str = "oss") -> EventRule:
    return new_rule(
        product,
        DEFAULT_RULE_NAME,
        [DEFAULT_EVENT_TYPE],
        ((MatchAtom(DEFAULT_RESOURCE),),),
        QUEUE,
    )


# --- refusals --------------------------------------------------------------------------

SIX_ATOMS = json.dumps([[{"Prefix": f"b{n}/"}] for n in range(6)])
REFUSALS: list[tuple[str, Mapping[str, str | None], str, str]] = [
    # id, changes, code, message fragment
    ("missing-rule-name", {"RuleName": None}, "InvalidArgument", "RuleName is required"),
    ("missing-match-rules", {"MatchRules": None}, "InvalidArgument", "MatchRules is required"),
    ("product-unknown", {"ProductName": "s3"}, "InvalidProductName", "use one of oss"),
    ("name-empty", {"RuleName": ""}, "EventRuleNameInvalid", "empty"),
    ("name-digit-first", {"RuleName": "1photos"}, "EventRuleNameInvalid", "starting with"),
    ("name-hyphen-first", {"RuleName": "-photos"}, "EventRuleNameInvalid", "starting with"),
    ("name-underscore", {"RuleName": "photo_s"}, "EventRuleNameInvalid", "letters, digits"),
    ("name-space", {"RuleName": "photo s"}, "EventRuleNameInvalid", "letters, digits"),
    ("name-non-ascii", {"RuleName": "photé"}, "EventRuleNameInvalid", "letters, digits"),
    ("name-86", {"RuleName": "a" * 86}, "EventRuleNameInvalid", "at most 85"),
    ("types-not-json", {"EventTypes": "PutObject"}, "EventTypeInvalid", "not valid JSON"),
    ("types-not-list", {"EventTypes": '"PutObject"'}, "EventTypeInvalid", "array of strings"),
    ("types-not-strings", {"EventTypes": "[1]"}, "EventTypeInvalid", "array of strings"),
    ("types-empty", {"EventTypes": "[]"}, "EventTypeInvalid", "at least one"),
    ("types-unknown", {"EventTypes": '["PutObjekt"]'}, "EventTypeInvalid", "'PutObject'?"),
    ("types-case", {"EventTypes": '["putobject"]'}, "EventTypeInvalid", "'putobject'"),
    (
        "types-old-misspelling",
        {"EventTypes": '["ObjectCreate:AppendObject"]'},
        "EventTypeInvalid",
        "not an event type of OSS",
    ),
    (
        "types-bucket-level",
        {"EventTypes": '["BucketQueried:GetBucketReferer"]'},
        "EventTypeInvalid",
        "'BucketQueried:GetBucketReferer'",
    ),
    ("types-other-product", {"EventTypes": '["Deliver:SendFailed"]'}, "EventTypeInvalid", "OSS"),
    ("types-wildcard-unknown", {"EventTypes": '["Bucket:*"]'}, "EventTypeInvalid", "Bucket:*"),
    ("types-default", {"EventTypes": '["Default"]'}, "EventTypeInvalid", "reserved"),
    (
        "types-default-mixed",
        {"EventTypes": '["PutObject","Default"]'},
        "EventTypeInvalid",
        DEFAULT_RULE_NAME,
    ),
    ("types-twice", {"EventTypes": '["PutObject","PutObject"]'}, "EventTypeInvalid", "once"),
    (
        "types-two-spellings",
        {"EventTypes": '["PutObject","ObjectCreated:PutObject"]'},
        "EventTypeInvalid",
        "same event type",
    ),
    (
        "types-group-and-member",
        {"EventTypes": '["PutObject","ObjectCreatedGroup"]'},
        "EventTypeInvalid",
        "'ObjectCreatedGroup' already covers 'PutObject': drop 'PutObject'",
    ),
    (
        "types-group-two-spellings",
        {"EventTypes": '["ObjectCreated:*","ObjectCreatedGroup"]'},
        "EventTypeInvalid",
        "same event type",
    ),
    ("rules-not-json", {"MatchRules": "[[{"}, "MatchRuleInvalid", "not valid JSON"),
    ("rules-object", {"MatchRules": "{}"}, "MatchRuleInvalid", "array of arrays"),
    ("rules-empty", {"MatchRules": "[]"}, "MatchRuleInvalid", "empty"),
    ("rules-empty-and", {"MatchRules": "[[]]"}, "MatchRuleInvalid", "list 1 is empty"),
    ("rules-flat", {"MatchRules": '[{"Prefix":"a/"}]'}, "MatchRuleInvalid", "list 1"),
    ("rules-string-atom", {"MatchRules": '[["a/"]]'}, "MatchRuleInvalid", "not an object"),
    ("rules-empty-atom", {"MatchRules": "[[{}]]"}, "MatchRuleInvalid", "is empty"),
    (
        "rules-state-only",
        {"MatchRules": '[[{"MatchState":true}]]'},
        "MatchRuleInvalid",
        '{"Prefix":""} to match every',
    ),
    ("rules-empty-name", {"MatchRules": '[[{"Name":""}]]'}, "MatchRuleInvalid", "is empty"),
    (
        "rules-lowercase-key",
        {"MatchRules": '[[{"Prefix":"a/","suffix":".jpg"}]]'},
        "MatchRuleInvalid",
        "did you mean 'Suffix'",
    ),
    ("rules-number", {"MatchRules": '[[{"Prefix":5}]]'}, "MatchRuleInvalid", "a string"),
    (
        "rules-state-string",
        {"MatchRules": '[[{"Prefix":"a/","MatchState":"yes"}]]'},
        "MatchRuleInvalid",
        "true or false",
    ),
    (
        "rules-name-and-prefix",
        {"MatchRules": '[[{"Name":"a/b","Prefix":"a/"}]]'},
        "MatchRuleInvalid",
        "takes no Prefix or Suffix",
    ),
    (
        "rules-name-and-suffix",
        {"MatchRules": '[[{"Name":"a/b","Suffix":"b"}]]'},
        "MatchRuleInvalid",
        "takes no Prefix or Suffix",
    ),
    (
        "rules-name-without-slash",
        {"MatchRules": '[[{"Name":"movie"}]]'},
        "MatchRuleInvalid",
        '{"Prefix":"movie/"}',
    ),
    (
        "rules-arn-bucket-name",
        {"MatchRules": '[[{"Name":"acs:oss:cn-hangzhou:1234567890123456:movie"}]]'},
        "MatchRuleInvalid",
        "has no '/'",
    ),
    (
        "rules-arn-only",
        {"MatchRules": '[[{"Prefix":"acs:oss:cn-hangzhou:1234567890123456:"}]]'},
        "MatchRuleInvalid",
        "names no bucket",
    ),
    ("rules-blank-prefix", {"MatchRules": '[[{"Prefix":"   "}]]'}, "MatchRuleInvalid", "blank"),
    ("rules-blank-suffix", {"MatchRules": '[[{"Suffix":"\\t"}]]'}, "MatchRuleInvalid", "blank"),
    ("rules-blank-name", {"MatchRules": '[[{"Name":" "}]]'}, "MatchRuleInvalid", "blank"),
    ("rules-six", {"MatchRules": SIX_ATOMS}, "MatchRuleInvalid", "at most 5"),
    (
        "rules-six-in-one-and",
        {"MatchRules": json.dumps([[{"Prefix": "a/"}] + [{"Suffix": "g"}] * 5])},
        "MatchRuleInvalid",
        "6 resource descriptions",
    ),
    (
        "rules-contradiction",
        {"MatchRules": '[[{"Prefix":"a/"},{"Prefix":"b/"}]]'},
        "MatchRuleInvalid",
        "can match no resource",
    ),
    (
        "rules-negated-self",
        {"MatchRules": '[[{"Prefix":"a/"},{"Prefix":"a/","MatchState":false}]]'},
        "MatchRuleInvalid",
        "can match no resource",
    ),
    (
        "rules-overlap",
        {"MatchRules": '[[{"Prefix":"photos/"}],[{"Suffix":".jpg"}]]'},
        "MatchRuleInvalid",
        "overlap: both match e.g. 'photos/x.jpg'",
    ),
    (
        "rules-duplicate",
        {"MatchRules": '[[{"Prefix":"a/"}],[{"Prefix":"a/"}]]'},
        "MatchRuleInvalid",
        "overlap",
    ),
    (
        "rules-name-inside-prefix",
        {"MatchRules": '[[{"Prefix":"a/"}],[{"Name":"a/b.jpg"}]]'},
        "MatchRuleInvalid",
        "'a/b.jpg'",
    ),
    (
        "rules-reserved",
        {"MatchRules": json.dumps([[{"Name": DEFAULT_RESOURCE}]])},
        "MatchRuleInvalid",
        "reserved for the default rule",
    ),
    ("endpoint-missing", {"Endpoint": None}, "EndpointInvalid", "Give the receiving endpoint"),
    (
        "endpoint-and-endpoints",
        {"Endpoints": endpoints_json(("queue", "q"))},
        "EndpointInvalid",
        "not both",
    ),
    ("endpoint-not-json", {"Endpoint": "queue:q"}, "EndpointInvalid", "not valid JSON"),
    ("endpoint-list", {"Endpoint": "[1]"}, "EndpointInvalid", "an object"),
    (
        "endpoint-kind",
        {"Endpoint": '{"EndpointType":"sms","EndpointValue":"x"}'},
        "EndpointInvalid",
        "use queue, http or topic",
    ),
    (
        "endpoint-value-empty",
        {"Endpoint": '{"EndpointType":"queue","EndpointValue":""}'},
        "EndpointInvalid",
        "EndpointValue",
    ),
    (
        "endpoint-queue-name",
        {"Endpoint": '{"EndpointType":"queue","EndpointValue":"bad_name"}'},
        "EndpointInvalid",
        "'bad_name'",
    ),
    (
        "endpoint-topic-name",
        {"Endpoint": json.dumps({"EndpointType": "topic", "EndpointValue": "t" * 121})},
        "EndpointInvalid",
        "at most 120",
    ),
    (
        "endpoint-url-scheme",
        {"Endpoint": '{"EndpointType":"http","EndpointValue":"ftp://h/x"}'},
        "EndpointInvalid",
        "http:// or https://",
    ),
    (
        "endpoint-url-host",
        {"Endpoint": '{"EndpointType":"http","EndpointValue":"http:///x"}'},
        "EndpointInvalid",
        "no host",
    ),
    (
        "endpoint-url-space",
        {"Endpoint": '{"EndpointType":"http","EndpointValue":"http://h/a b"}'},
        "EndpointInvalid",
        "percent-encoded",
    ),
    (
        "endpoint-url-port",
        {"Endpoint": '{"EndpointType":"http","EndpointValue":"http://h:x/"}'},
        "EndpointInvalid",
        "port",
    ),
    (
        "endpoints-not-list",
        {"Endpoint": None, "Endpoints": '{"EndpointType":"queue","EndpointValue":"q"}'},
        "EndpointInvalid",
        "JSON array",
    ),
    ("endpoints-empty", {"Endpoint": None, "Endpoints": "[]"}, "EndpointInvalid", "no endpoint"),
    (
        "endpoints-six",
        {"Endpoint": None, "Endpoints": endpoints_json(*(("queue", f"q{n}") for n in range(6)))},
        "EndpointInvalid",
        "at most 5",
    ),
    (
        "endpoints-topic-and-queue",
        {"Endpoint": None, "Endpoints": endpoints_json(("topic", "t"), ("queue", "q"))},
        "EndpointInvalid",
        "exclusive",
    ),
    (
        "endpoints-two-topics",
        {"Endpoint": None, "Endpoints": endpoints_json(("topic", "t"), ("topic", "u"))},
        "EndpointInvalid",
        "exclusive",
    ),
    (
        "endpoints-duplicate",
        {"Endpoint": None, "Endpoints": endpoints_json(("queue", "q"), ("queue", "q"))},
        "EndpointInvalid",
        "listed twice",
    ),
]


@pytest.mark.parametrize(
    ("changes", "code", "fragment"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refusals(changes: Mapping[str, str | None], code: str, fragment: str) -> None:
    with pytest.raises(ServiceError) as caught:
        rule_from_request(request(**changes))
    assert caught.value.code == code, caught.value.message
    assert fragment in caught.value.message


DEFAULT_REFUSALS: list[tuple[str, Mapping[str, str | None], str, str]] = [
    ("default-other-type", {"EventTypes": '["PutObject"]'}, "EventTypeInvalid", "single"),
    (
        "default-extra-type",
        {"EventTypes": '["Default","PutObject"]'},
        "EventTypeInvalid",
        'EventTypes=["Default"]',
    ),
    ("default-other-resource", {"MatchRules": '[[{"Prefix":"a/"}]]'}, "MatchRuleInvalid", "single"),
    (
        "default-extra-resource",
        {"MatchRules": json.dumps([[{"Name": DEFAULT_RESOURCE}], [{"Prefix": "a/"}]])},
        "MatchRuleInvalid",
        DEFAULT_RESOURCE,
    ),
    (
        "default-negated",
        {"MatchRules": json.dumps([[{"Name": DEFAULT_RESOURCE, "MatchState": False}]])},
        "MatchRuleInvalid",
        DEFAULT_RESOURCE,
    ),
    (
        "default-with-suffix",
        {"MatchRules": json.dumps([[{"Prefix": DEFAULT_RESOURCE, "Suffix": "x"}]])},
        "MatchRuleInvalid",
        DEFAULT_RESOURCE,
    ),
    (
        "default-topic-and-queue",
        {"Endpoint": None, "Endpoints": endpoints_json(("topic", "t"), ("queue", "q"))},
        "EndpointInvalid",
        "exclusive",
    ),
]


@pytest.mark.parametrize(
    ("changes", "code", "fragment"),
    [case[1:] for case in DEFAULT_REFUSALS],
    ids=[case[0] for case in DEFAULT_REFUSALS],
)
def test_default_rule_refusals(changes: Mapping[str, str | None], code: str, fragment: str) -> None:
    with pytest.raises(ServiceError) as caught:
        rule_from_request(default_request(**changes))
    assert caught.value.code == code, caught.value.message
    assert fragment in caught.value.message


def test_direct_mail_refuses_sms_topics() -> None:
    with pytest.raises(ServiceError) as caught:
        new_rule(
            "dm", "mail", ["Deliver:SendFailed"], ((atom(),),), [RuleEndpoint("topic", "sms.x")]
        )
    assert caught.value.code == "EndpointInvalid"


def test_typed_input_is_validated_like_json() -> None:
    """new_rule re-checks what parse_match_rules checks, for callers building atoms."""
    for bad in (atom(name=""), atom(prefix="  "), atom(name="bucket")):
        with pytest.raises(ServiceError) as caught:
            rule("r", ["PutObject"], ((bad,),))
        assert caught.value.code == "MatchRuleInvalid"
    with pytest.raises(ServiceError):
        rule("r", ["PutObject"], ((),))
    with pytest.raises(ServiceError):
        rule("r", ["PutObject"], ())
    with pytest.raises(ServiceError) as caught:
        new_rule("oss", "r", ["PutObject"], ((atom(),),), [])
    assert caught.value.code == "EndpointInvalid"


# --- acceptance ------------------------------------------------------------------------

ACCEPTED: list[tuple[str, Mapping[str, str | None]]] = [
    ("base", {}),
    ("name-85", {"RuleName": "a" + "-9Z" * 28}),
    ("name-one-letter", {"RuleName": "r"}),
    ("product-upper", {"ProductName": "OSS"}),
    ("types-emitted", {"EventTypes": '["ObjectCreated:PutObject","ObjectRemoved:DeleteObject"]'}),
    ("types-groups", {"EventTypes": '["ObjectCreatedGroup","ObjectRemovedGroup"]'}),
    ("types-download-group", {"EventTypes": '["ObjectDownloadedGroup"]'}),
    ("types-wildcard", {"EventTypes": '["ObjectCreated:*","ObjectReplication:*"]'}),
    (
        "types-every-configured",
        {
            "EventTypes": json.dumps(
                [t for t in PRODUCTS["oss"].event_types if t != "ObjectModified:ChangeStorageClass"]
                + ["ObjectModified:ChangeStorageClass"]
            )
        },
    ),
    ("rules-match-all", {"MatchRules": '[[{"Prefix":""}]]'}),
    ("rules-match-all-both", {"MatchRules": '[[{"Prefix":"","Suffix":""}]]'}),
    ("rules-suffix", {"MatchRules": '[[{"Suffix":".avi"}]]'}),
    ("rules-bucket-prefix", {"MatchRules": '[[{"Prefix":"mov"}]]'}),
    ("rules-name", {"MatchRules": '[[{"Name":"movie/hello.avi","MatchState":true}]]'}),
    ("rules-null-fields", {"MatchRules": '[[{"Name":null,"Prefix":"a/","MatchState":null}]]'}),
    ("rules-empty-name-ignored", {"MatchRules": '[[{"Name":"","Prefix":"a/"}]]'}),
    ("rules-arn-name", {"MatchRules": '[[{"Name":"acs:oss:cn-hangzhou:1:movie/a.avi"}]]'}),
    ("rules-arn-prefix", {"MatchRules": '[[{"Prefix":"acs:oss:cn-hangzhou:1:movie/"}]]'}),
    ("rules-five", {"MatchRules": json.dumps([[{"Prefix": f"b{n}/"}] for n in range(5)])}),
    (
        "rules-spec-example",
        {
            "MatchRules": '[[{"Prefix":"photo-archive/uploads/","Suffix":".jpg",'
            '"MatchState":true}],[{"Name":"photo-archive/cover.png","MatchState":true}]]'
        },
    ),
    (
        "rules-negation",
        {
            "MatchRules": '[[{"Prefix":"a/"},{"Prefix":"a/tmp/","MatchState":false}],'
            '[{"Prefix":"b/"}]]'
        },
    ),
    (
        "rules-adjacent",
        {"MatchRules": '[[{"Prefix":"a/"}],[{"Prefix":"a"},{"Prefix":"a/","MatchState":false}]]'},
    ),
    ("endpoint-topic", {"Endpoint": '{"EndpointType":"topic","EndpointValue":"my-topic"}'}),
    (
        "endpoint-http",
        {"Endpoint": '{"EndpointType":"http","EndpointValue":"http://127.0.0.1:8/x"}'},
    ),
    ("endpoint-kind-case", {"Endpoint": '{"EndpointType":"Queue","EndpointValue":"q"}'}),
    (
        "endpoints-five-mixed",
        {
            "Endpoint": None,
            "Endpoints": endpoints_json(
                ("queue", "q1"),
                ("queue", "q2"),
                ("http", "https://hooks.example.com/oss"),
                ("http", "http://10.0.0.1/oss"),
                ("queue", "q3"),
            ),
        },
    ),
    ("endpoints-topic-alone", {"Endpoint": None, "Endpoints": endpoints_json(("topic", "t"))}),
]


@pytest.mark.parametrize("changes", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted(changes: Mapping[str, str | None]) -> None:
    params = request(**changes)
    created = rule_from_request(params, topic_name="mns-en-topics-x", created_ms=7)
    assert created.product == "oss"
    assert created.name == params["RuleName"]
    assert created.event_types == tuple(json.loads(params["EventTypes"]))
    assert created.created_ms == 7
    # What GetEventRule echoes is what was sent (MatchState and empty Suffix filled in).
    sent = json.loads(params["MatchRules"])
    echoed = rule_to_dict(created)["MatchRules"]
    assert isinstance(echoed, list)
    for sent_list, echoed_list in zip(sent, echoed, strict=True):
        for sent_atom, echoed_atom in zip(sent_list, echoed_list, strict=True):
            for key, value in sent_atom.items():
                if key == "MatchState":
                    assert echoed_atom[key] is (value is not False)
                elif value not in (None, "") or key == "Prefix":
                    assert echoed_atom[key] == value
    assert rule_from_dict(json.loads(json.dumps(rule_to_dict(created)))) == created


def test_default_rule_accepted_with_name_or_prefix() -> None:
    for resource in ({"Name": DEFAULT_RESOURCE}, {"Prefix": DEFAULT_RESOURCE}):
        created = rule_from_request(default_request(MatchRules=json.dumps([[resource]])))
        assert created.is_default
        assert created.event_types == (DEFAULT_EVENT_TYPE,)


def test_topic_endpoint_names_the_rules_topic() -> None:
    params = request(Endpoint='{"EndpointType":"topic","EndpointValue":"mine"}')
    assert rule_from_request(params, topic_name="ignored").topic_name == "mine"
    assert rule_from_request(request(), topic_name="auto").topic_name == "auto"
    assert rule_from_request(request()).topic_name == ""


def test_arn_is_stripped_for_matching_and_kept_for_the_echo() -> None:
    arn = "acs:oss:cn-hangzhou:1234567890123456:"
    created = rule_from_request(request(MatchRules=json.dumps([[{"Prefix": arn + "movie/"}]])))
    (only,) = created.match_rules[0]
    assert (only.prefix, only.arn_prefix) == ("movie/", arn)
    assert rule_matches(created, "ObjectCreated:PutObject", "movie/a.avi")
    assert rule_to_dict(created)["MatchRules"] == [
        [{"Prefix": arn + "movie/", "Suffix": "", "MatchState": True}]
    ]


def test_other_products() -> None:
    assert canonical_product("DirectMail") == "dm"
    assert canonical_product("vision") == "viapi"
    assert canonical_product(" VOD ") == "vod"
    dm = new_rule("DirectMail", "mail", ["Deliver:SendFailed"], ((atom(prefix="x"),),), QUEUE)
    assert dm.product == "dm"
    assert rule_matches(dm, "Deliver:SendFailed", "x1")
    assert not rule_matches(dm, "Deliver:SendSuccessfully", "x1")
    wildcard = new_rule("dm", "mail2", ["Deliver:*"], ((atom(prefix="y"),),), QUEUE)
    assert rule_matches(wildcard, "Deliver:SendSuccessfully", "y")
    vod = new_rule("vod", "video", ["FileUploadComplete"], ((atom(),),), QUEUE)
    assert rule_matches(vod, "FileUploadComplete", "anything")
    # Vision AI event types are API operation names the spec cannot enumerate.
    vision = new_rule("vision", "ai", ["SomeFutureOperation"], ((atom(),),), QUEUE)
    assert rule_matches(vision, "SomeFutureOperation", "job")
    assert not rule_matches(vision, "SuperResolveVideo", "job")
    for product, bad in (("vod", "PutObject"), ("viapi", "not-an-op"), ("dm", "Deliver")):
        with pytest.raises(ServiceError) as caught:
            new_rule(product, "r", [bad], ((atom(),),), QUEUE)
        assert caught.value.code == "EventTypeInvalid"
    # Only OSS resources are bucket/key: a full name without '/' is fine elsewhere.
    assert new_rule("vod", "v2", ["SnapshotComplete"], ((atom(name="app-1000000"),),), QUEUE)


def test_parse_helpers_accept_decoded_values() -> None:
    assert parse_match_rules([[{"Prefix": "a/"}]]) == ((atom(prefix="a/"),),)
    assert parse_endpoints({"EndpointType": "topic", "EndpointValue": "t"}) == (
        RuleEndpoint("topic", "t"),
    )
    assert parse_endpoints(endpoints=[{"EndpointType": "http", "EndpointValue": "http://h"}]) == (
        RuleEndpoint("http", "http://h"),
    )


def test_auto_names_and_not_exist() -> None:
    assert (
        auto_topic_name("oss", "photos-created", "31415926535897")
        == "mns-en-topics-oss-photos-created-31415926535897"
    )
    assert (
        auto_subscription_name("oss", "photos-created", 1, "31415926536012")
        == "mns-en-subs-oss-photos-created-1-31415926536012"
    )
    # The longest names still fit the 120-character topic/subscription name limit.
    longest = "a" * 85
    assert len(auto_topic_name("viapi", longest, "9" * 14)) <= 120
    assert len(auto_subscription_name("viapi", longest, 5, "9" * 14)) <= 120
    error = event_rule_not_exist("oss", "gone")
    assert error.code == "EventRuleNotExist" and "'gone'" in error.message


# --- limits and uniqueness -------------------------------------------------------------


def test_tenth_rule_accepted_eleventh_refused() -> None:
    rules = [default_rule()]
    for n in range(MAX_RULES_PER_PRODUCT - 1):
        candidate = rule(f"r{n}", ["PutObject"], ((atom(prefix=f"b{n}/"),),))
        check_can_add(candidate, rules)
        rules.append(candidate)
    assert len(rules) == MAX_RULES_PER_PRODUCT
    eleventh = rule("r-last", ["PutObject"], ((atom(prefix="other/"),),))
    with pytest.raises(ServiceError) as caught:
        check_can_add(eleventh, rules)
    assert caught.value.code == "EventRuleLimitExceeded"
    assert "delete one first" in caught.value.message
    # The limit is per product.
    check_can_add(rule("mail", ["Deliver:SendFailed"], ((atom(),),), "dm"), rules)


def test_name_taken_is_refused_before_anything_else() -> None:
    existing = rule("photos", ["PutObject"], ((atom(prefix="a/"),),))
    again = rule("photos", ["GetObject"], ((atom(prefix="b/"),),))
    with pytest.raises(ServiceError) as caught:
        check_can_add(again, [existing])
    assert caught.value.code == "EventRuleAlreadyExist"
    with pytest.raises(ServiceError) as caught:
        check_can_add(default_rule(), [default_rule()])
    assert caught.value.code == "EventRuleAlreadyExist"
    check_can_add(rule("photos", ["Deliver:SendFailed"], ((atom(),),), "dm"), [existing])


def test_conflict_refusal_names_rule_descriptions_and_types() -> None:
    existing = rule("images", ["CopyObject"], ((atom(prefix="images"),),))
    new = rule("all-copies", ["CopyObject", "PutObject"], ((atom(suffix=".png"),),))
    with pytest.raises(ServiceError) as caught:
        check_can_add(new, [existing])
    error = caught.value
    assert error.code == "EventRuleConflict"
    for part in ("'images'", '{"Suffix":".png"}', '{"Prefix":"images"}', "CopyObject"):
        assert part in error.message
    assert "PutObject" not in error.message.split("select")[1].split(".")[0]
    assert error.details["ExampleResource"] == "imagesx.png"
    # The default rule coexists with everything.
    check_can_add(default_rule(), [existing])
    check_can_add(rule("catch", ["ObjectCreatedGroup"], ((atom(),),)), [default_rule()])


# --- matching --------------------------------------------------------------------------

COVERING = [
    ("ObjectCreated:PutObject", {"PutObject", "ObjectCreated:PutObject", "ObjectCreatedGroup"}),
    (
        "ObjectRemoved:AbortMultipartUpload",
        {"AbortMultipartUpload", "ObjectRemoved:AbortMultipartUpload", "ObjectRemovedGroup"},
    ),
    (
        "ObjectDownloaded:GetObject",
        {"GetObject", "ObjectDownloaded:GetObject", "ObjectDownloadedGroup"},
    ),
    ("ObjectRestore:FinishRestore", {"FinishRestore", "ObjectRestore:FinishRestore"}),
    ("ObjectReplication:ObjectCreated", {"ObjectReplication:ObjectCreated"}),
    ("ObjectModified:ChangeStorageClass", {"ObjectModified:ChangeStorageClass"}),
    ("ObjectCreated:PutSymlink", {"ObjectCreatedGroup"}),  # a name no rule lists
    ("BucketQueried:GetBucketReferer", set()),
]


@pytest.mark.parametrize(("emitted", "expected"), COVERING, ids=[c[0] for c in COVERING])
def test_configured_types_covering(emitted: str, expected: set[str]) -> None:
    found = configured_types_covering(emitted)
    assert expected <= found
    assert DEFAULT_EVENT_TYPE not in found
    # Besides the expected spellings only the `X:*` wildcard of the same prefix appears.
    assert found - expected <= {emitted.split(":")[0] + ":*"}


def test_configured_types_covering_other_products() -> None:
    assert configured_types_covering("Deliver:SendFailed", "dm") == {
        "Deliver:SendFailed",
        "Deliver:*",
    }
    assert configured_types_covering("TranscodeComplete", "vod") == {"TranscodeComplete"}


PUT, POST = "ObjectCreated:PutObject", "ObjectCreated:PostObject"
ONLY_PUT = ["PutObject"]
A_NOT_TMP = [[atom(prefix="a/"), atom(prefix="a/tmp/", state=False)]]
MATCHING = [
    # event types, match rules, event, resource, expected
    (ONLY_PUT, [[atom(prefix="photos/")]], PUT, "photos/a", True),
    (ONLY_PUT, [[atom(prefix="photos/")]], POST, "photos/a", False),
    (ONLY_PUT, [[atom(prefix="photos/")]], PUT, "photo/a", False),
    (["ObjectCreatedGroup"], [[atom()]], "ObjectCreated:AppendObject", "b/k", True),
    (["ObjectCreatedGroup"], [[atom()]], "ObjectRemoved:DeleteObject", "b/k", False),
    (["ObjectRemovedGroup"], [[atom()]], "ObjectRemoved:AbortMultipartUpload", "b/k", True),
    (["ObjectCreated:*"], [[atom()]], "ObjectCreated:CopyObject", "b/k", True),
    (["FinishRestore"], [[atom()]], "ObjectRestore:FinishRestore", "b/k", True),
    (ONLY_PUT, [[atom(name="movie/hello.avi")]], PUT, "movie/hello.avi", True),
    (ONLY_PUT, [[atom(name="movie/hello.avi")]], PUT, "movie/hello.avix", False),
    (ONLY_PUT, [[atom(prefix="mov")]], PUT, "movies/x", True),
    (ONLY_PUT, [[atom(suffix=".avi")]], PUT, "any/x.avi", True),
    (ONLY_PUT, [[atom(suffix=".avi")]], PUT, "any/x.avi.bak", False),
    (ONLY_PUT, [[atom(prefix="movie/", suffix=".avi")]], PUT, "movie/.avi", True),
    (ONLY_PUT, [[atom(prefix="ab", suffix="bc")]], PUT, "abc", True),
    (ONLY_PUT, [[atom(prefix="movie/", suffix=".avi")]], PUT, "movie/a.mp4", False),
    (ONLY_PUT, [[atom(prefix="")]], PUT, "", True),
    (ONLY_PUT, [[atom(prefix="a/"), atom(suffix=".jpg")]], PUT, "a/x.jpg", True),
    (ONLY_PUT, [[atom(prefix="a/"), atom(suffix=".jpg")]], PUT, "a/x.png", False),
    (ONLY_PUT, [[atom(prefix="a/")], [atom(suffix=".jpg")]], PUT, "b/x.jpg", True),
    (ONLY_PUT, A_NOT_TMP, PUT, "a/tmp/x", False),
    (ONLY_PUT, A_NOT_TMP, PUT, "a/tm", True),
]


@pytest.mark.parametrize(("types", "rules", "event", "resource", "expected"), MATCHING)
def test_rule_matches(
    types: list[str],
    rules: list[list[MatchAtom]],
    event: str,
    resource: str,
    expected: bool,
) -> None:
    match_rules = tuple(tuple(conjunction) for conjunction in rules)
    subject = EventRule("oss", "r", tuple(types), match_rules, QUEUE)
    assert rule_matches(subject, event, resource) is expected


def test_default_rule_alone_receives_everything() -> None:
    default = default_rule()
    for event, resource in (
        ("ObjectCreated:PutObject", "b/k"),
        ("BucketQueried:GetBucketReferer", "b"),
        ("ObjectRemoved:DeleteObject", ""),
    ):
        assert select_rules([default], "oss", event, resource) == [default]
        assert rule_matches(default, event, resource)


def test_default_rule_receives_only_what_no_other_rule_matched() -> None:
    default = default_rule()
    photos = rule("photos", ["PutObject"], ((atom(prefix="photos/"),),))
    rules = [default, photos]
    assert select_rules(rules, "oss", "ObjectCreated:PutObject", "photos/a") == [photos]
    assert select_rules(rules, "oss", "ObjectCreated:PutObject", "videos/a") == [default]
    assert select_rules(rules, "oss", "ObjectCreated:PostObject", "photos/a") == [default]
    # Rules and the default rule of another product are not consulted.
    mail_default = default_rule("dm")
    assert select_rules([mail_default, photos], "oss", "ObjectCreated:PutObject", "x/y") == []
    assert select_rules([mail_default], "DirectMail", "Deliver:SendFailed", "x") == [mail_default]
    assert select_rules([], "oss", "ObjectCreated:PutObject", "x/y") == []


def test_several_matching_rules_each_receive_the_event_in_order() -> None:
    # The non-overlap rule forbids this at creation; rules loaded otherwise still deliver
    # once per matching rule (§1.3 step 3).
    first = EventRule("oss", "first", ("PutObject",), ((atom(prefix="a"),),), QUEUE)
    second = EventRule("oss", "second", ("ObjectCreatedGroup",), ((atom(),),), QUEUE)
    rules = [default_rule(), second, first]
    assert select_rules(rules, "oss", "ObjectCreated:PutObject", "ab") == [second, first]


# --- select_rules against a naive model of §1.3 ----------------------------------------

NAIVE_SHORT = {
    "PutObject": "ObjectCreated:PutObject",
    "CopyObject": "ObjectCreated:CopyObject",
    "GetObject": "ObjectDownloaded:GetObject",
    "DeleteObject": "ObjectRemoved:DeleteObject",
}
NAIVE_GROUPS = {"ObjectCreatedGroup": "ObjectCreated:", "ObjectRemovedGroup": "ObjectRemoved:"}
TYPE_CHOICES = [*NAIVE_SHORT, *NAIVE_GROUPS, "ObjectCreated:PutObject", "ObjectRemoved:*"]
EVENTS = [
    *NAIVE_SHORT.values(),
    "ObjectCreated:PostObject",
    "ObjectRemoved:DeleteObjects",
    "BucketQueried:GetBucketReferer",
]


def naive_rule_matches(subject: EventRule, event: str, resource: str) -> bool:
    def covers(configured: str) -> bool:
        if configured in NAIVE_GROUPS:
            return event.startswith(NAIVE_GROUPS[configured])
        if configured.endswith(":*"):
            return event.startswith(configured[:-1])
        return NAIVE_SHORT.get(configured, configured) == event

    def atom_ok(one: MatchAtom) -> bool:
        if one.name is not None:
            hit = resource == one.name
        else:
            hit = (
                resource[: len(one.prefix)] == one.prefix
                and resource[len(resource) - len(one.suffix) :] == one.suffix
                and len(resource) >= len(one.suffix)
            )
        return hit == one.match_state

    return any(covers(t) for t in subject.event_types) and any(
        all(atom_ok(one) for one in conjunction) for conjunction in subject.match_rules
    )


texts = st.text("ab/", max_size=2)
atoms_st = st.one_of(
    st.builds(MatchAtom, name=st.text("ab/", min_size=1, max_size=3), match_state=st.booleans()),
    st.builds(MatchAtom, name=st.none(), prefix=texts, suffix=texts, match_state=st.booleans()),
)
rules_st = st.lists(
    st.tuples(
        st.sampled_from(["oss", "oss", "dm"]),
        st.lists(st.sampled_from(TYPE_CHOICES), min_size=1, max_size=3, unique=True),
        st.lists(st.lists(atoms_st, min_size=1, max_size=2).map(tuple), min_size=1, max_size=3),
    ),
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(
    rules_st,
    st.booleans(),
    st.sampled_from(EVENTS),
    st.text("ab/#", max_size=5),
)
def test_select_rules_agrees_with_the_naive_model(
    specs: list[tuple[str, list[str], list[tuple[MatchAtom, ...]]]],
    with_default: bool,
    event: str,
    resource: str,
) -> None:
    rules = [
        EventRule(product, f"r{n}", tuple(types), tuple(match_rules), QUEUE)
        for n, (product, types, match_rules) in enumerate(specs)
    ]
    if with_default:
        rules.insert(len(rules) // 2, default_rule())
    chosen = select_rules(rules, "oss", event, resource)
    expected = [
        r
        for r in rules
        if r.product == "oss" and not r.is_default and naive_rule_matches(r, event, resource)
    ]
    if not expected and with_default:
        expected = [r for r in rules if r.is_default]
    assert chosen == expected
