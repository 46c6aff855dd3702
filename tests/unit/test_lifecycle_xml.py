"""PutBucketLifecycle / GetBucketLifecycle XML (`tidings.api.oss.lifecycle_xml`), spec §9.12.

The documents the SDKs really send are built with their own serializers (`oss2`'s
`to_put_bucket_lifecycle`, v2's `serde.serialize_xml`) and must parse into the expected
model; what we render must be read back correctly by both SDKs' parsers. Random valid
configurations survive render -> parse unchanged.
"""

from __future__ import annotations

import datetime
from dataclasses import replace

import alibabacloud_oss_v2.models as v2
import oss2.models as o2
import pytest
from alibabacloud_oss_v2 import serde
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from oss2 import xml_utils

from tidings.api.oss.lifecycle_xml import parse_lifecycle, render_lifecycle
from tidings.errors import ServiceError
from tidings.services.lifecycle_rules import (
    MAX_RULES,
    TRANSITION_CLASSES,
    Expiration,
    LifecycleConfiguration,
    LifecycleRule,
    NoncurrentTransition,
    NotFilter,
    TagFilter,
    Timing,
    Transition,
    validate,
)

DAY_MS = 86_400_000
JAN_2023 = 19358 * DAY_MS  # 2023-01-01T00:00:00Z
UTC = datetime.UTC

SPEC_EXAMPLE = b"""<LifecycleConfiguration>
  <Rule>
    <ID>archive-logs</ID>
    <Prefix>logs/</Prefix>
    <Status>Enabled</Status>
    <Filter>
      <ObjectSizeGreaterThan>500</ObjectSizeGreaterThan>
      <ObjectSizeLessThan>64000</ObjectSizeLessThan>
      <Not><Prefix>logs/keep/</Prefix><Tag><Key>keep</Key><Value>yes</Value></Tag></Not>
    </Filter>
    <Tag><Key>type</Key><Value>log</Value></Tag>
    <Transition><Days>30</Days><StorageClass>IA</StorageClass></Transition>
    <Transition><Days>60</Days><StorageClass>Archive</StorageClass></Transition>
    <Transition><Days>180</Days><StorageClass>ColdArchive</StorageClass></Transition>
    <Transition><Days>360</Days><StorageClass>DeepColdArchive</StorageClass></Transition>
    <Expiration><Days>720</Days></Expiration>
    <AbortMultipartUpload><Days>7</Days></AbortMultipartUpload>
    <NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays><StorageClass>IA</StorageClass></NoncurrentVersionTransition>
    <NoncurrentVersionExpiration><NoncurrentDays>60</NoncurrentDays></NoncurrentVersionExpiration>
  </Rule>
</LifecycleConfiguration>"""

SPEC_MODEL = LifecycleConfiguration(
    (
        LifecycleRule(
            id="archive-logs",
            prefix="logs/",
            enabled=True,
            tags=(TagFilter("type", "log"),),
            size_greater_than=500,
            size_less_than=64000,
            nots=(NotFilter("logs/keep/", TagFilter("keep", "yes")),),
            expiration=Expiration(Timing(days=720)),
            transitions=(
                Transition(Timing(days=30), "IA"),
                Transition(Timing(days=60), "Archive"),
                Transition(Timing(days=180), "ColdArchive"),
                Transition(Timing(days=360), "DeepColdArchive"),
            ),
            abort_multipart=Timing(days=7),
            noncurrent_expiration_days=60,
            noncurrent_transitions=(NoncurrentTransition(30, "IA"),),
        ),
    )
)


def document(*rules: str, root: str = "LifecycleConfiguration") -> bytes:
    return f"<{root}>{''.join(rules)}</{root}>".encode()


def rule_xml(body: str = "<Expiration><Days>1</Days></Expiration>", *, head: str = "") -> str:
    """A rule: `head` (ID, Prefix, Status) defaults to an enabled `r1` on the whole bucket."""
    return f"<Rule>{head or '<ID>r1</ID><Prefix></Prefix><Status>Enabled</Status>'}{body}</Rule>"


def only_rule(body: bytes) -> LifecycleRule:
    config = parse_lifecycle(body)
    assert len(config.rules) == 1
    return config.rules[0]


def refused(body: bytes, code: str, fragment: str = "") -> None:
    with pytest.raises(ServiceError) as caught:
        parse_lifecycle(body)
    assert caught.value.code == code, caught.value.message
    assert fragment in caught.value.message


# -- the spec example ----------------------------------------------------------------------


def test_the_spec_example_parses() -> None:
    assert parse_lifecycle(SPEC_EXAMPLE) == SPEC_MODEL


def test_the_spec_example_round_trips() -> None:
    rendered = render_lifecycle(SPEC_MODEL)
    assert rendered.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"xmlns" not in rendered
    assert parse_lifecycle(rendered) == SPEC_MODEL


def test_rendered_rules_start_with_id_prefix_status() -> None:
    config = LifecycleConfiguration((replace(SPEC_MODEL.rules[0], prefix="", enabled=False),))
    root = etree.fromstring(render_lifecycle(config))
    children = [child.tag for child in root[0]]
    assert children[:3] == ["ID", "Prefix", "Status"]
    assert root[0].findtext("Prefix") == ""
    assert root[0].findtext("Status") == "Disabled"
    assert children.count("Transition") == 4


def test_only_present_elements_are_rendered() -> None:
    config = LifecycleConfiguration(
        (LifecycleRule("r", "p/", True, expiration=Expiration(None, True)),)
    )
    root = etree.fromstring(render_lifecycle(config))
    assert [child.tag for child in root[0]] == ["ID", "Prefix", "Status", "Expiration"]
    assert root[0].findtext("Expiration/ExpiredObjectDeleteMarker") == "true"


def test_rendered_dates_and_booleans() -> None:
    config = LifecycleConfiguration(
        (
            LifecycleRule(
                "r",
                "",
                True,
                transitions=(Transition(Timing(days=3), "IA", True, True, True),),
                abort_multipart=Timing(created_before_ms=JAN_2023),
                noncurrent_transitions=(NoncurrentTransition(4, "Archive", True, False, True),),
            ),
        )
    )
    rule = etree.fromstring(render_lifecycle(config))[0]
    assert rule.findtext("AbortMultipartUpload/CreatedBeforeDate") == "2023-01-01T00:00:00.000Z"
    assert rule.findtext("Transition/IsAccessTime") == "true"
    assert rule.findtext("Transition/ReturnToStdWhenVisit") == "true"
    assert rule.findtext("Transition/AllowSmallFile") == "true"
    assert rule.findtext("NoncurrentVersionTransition/IsAccessTime") == "true"
    assert rule.find("NoncurrentVersionTransition/ReturnToStdWhenVisit") is None


# -- leniency ------------------------------------------------------------------------------


def test_child_order_is_free() -> None:
    # v2 writes ID, Expiration, Transition, Prefix, Status.
    body = document(
        "<Rule><ID>r1</ID><Expiration><Days>9</Days></Expiration>"
        "<Transition><StorageClass>IA</StorageClass><Days>3</Days></Transition>"
        "<Prefix>a/</Prefix><Status>Enabled</Status></Rule>"
    )
    assert only_rule(body) == LifecycleRule(
        "r1",
        "a/",
        True,
        expiration=Expiration(Timing(days=9)),
        transitions=(Transition(Timing(days=3), "IA"),),
    )


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        (" true ", True),
        ("false", False),
        ("False", False),
    ],
)
def test_booleans_in_any_case(spelling: str, value: bool) -> None:
    body = document(
        rule_xml(
            f"<Transition><Days>3</Days><StorageClass>IA</StorageClass>"
            f"<IsAccessTime>{spelling}</IsAccessTime></Transition>"
        )
    )
    assert only_rule(body).transitions[0].is_access_time is value


@pytest.mark.parametrize(
    "date",
    [
        "2023-01-01T00:00:00.000Z",
        "2023-01-01T00:00:00Z",
        "2023-01-01T00:00:00.000000Z",
        "2023-01-01T00:00:00+00:00",
        "2023-01-01T00:00:00",
        "2023-01-01",
        " 2023-01-01T00:00:00.000Z\n",
    ],
)
def test_date_forms(date: str) -> None:
    for element in ("CreatedBeforeDate", "Date"):
        body = document(rule_xml(f"<Expiration><{element}>{date}</{element}></Expiration>"))
        assert only_rule(body).expiration == Expiration(Timing(created_before_ms=JAN_2023))


@pytest.mark.parametrize(
    "date",
    [
        "2023-01-01T00:00:01.000Z",
        "2023-01-01T12:00:00Z",
        "2023-01-01T00:00:00.500Z",
        "2023-02-30T00:00:00.000Z",
        "2023-13-01",
        "2023-1-1",
        "01/01/2023",
        "2023-01-01T00:00:00+08:00",
        "",
        "yesterday",
    ],
)
def test_bad_dates(date: str) -> None:
    refused(
        document(
            rule_xml(f"<Expiration><CreatedBeforeDate>{date}</CreatedBeforeDate></Expiration>")
        ),
        "InvalidArgument",
        "Expiration CreatedBeforeDate",
    )


def test_the_legacy_date_is_echoed_as_created_before_date() -> None:
    body = document(rule_xml("<Expiration><Date>2023-01-01T00:00:00.000Z</Date></Expiration>"))
    rendered = etree.fromstring(render_lifecycle(parse_lifecycle(body)))
    assert rendered.findtext("Rule/Expiration/CreatedBeforeDate") == "2023-01-01T00:00:00.000Z"
    assert rendered.find("Rule/Expiration/Date") is None


def test_a_namespace_and_declaration_are_tolerated() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<LifecycleConfiguration xmlns="http://doc.oss-cn-hangzhou.aliyuncs.com">'
        + rule_xml().encode()
        + b"</LifecycleConfiguration>"
    )
    assert only_rule(body).id == "r1"


def test_missing_prefix_means_the_whole_bucket() -> None:
    body = document(rule_xml(head="<ID>r</ID><Status>Enabled</Status>"))
    assert only_rule(body).prefix == ""


def test_atime_base_is_ignored() -> None:
    body = document(
        rule_xml("<AtimeBase>1600000000</AtimeBase><Expiration><Days>1</Days></Expiration>")
    )
    assert only_rule(body).id == "r1"


def test_empty_filter_and_empty_not_prefix() -> None:
    # oss2 writes <Filter /> for an empty LifecycleFilter and <Prefix /> for a Not without one.
    rule = only_rule(document(rule_xml("<Filter/><Expiration><Days>1</Days></Expiration>")))
    assert rule.nots == () and rule.size_greater_than is None and rule.size_less_than is None
    rule = only_rule(
        document(
            rule_xml(
                "<Filter><Not><Prefix/><Tag><Key>k</Key><Value/></Tag></Not></Filter>"
                "<NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays>"
                "</NoncurrentVersionExpiration>"
            )
        )
    )
    assert rule.nots == (NotFilter("", TagFilter("k", "")),)


def test_several_nots_and_tags() -> None:
    body = document(
        rule_xml(
            "<Filter><Not><Prefix>a</Prefix></Not><Not><Prefix>b</Prefix></Not></Filter>"
            "<Tag><Key>x</Key><Value>1</Value></Tag><Tag><Key>y</Key></Tag>"
            "<Expiration><Days>1</Days></Expiration>"
        )
    )
    rule = only_rule(body)
    assert rule.nots == (NotFilter("a", None), NotFilter("b", None))
    assert rule.tags == (TagFilter("x", "1"), TagFilter("y", ""))


def test_missing_or_empty_ids_are_generated_and_unique() -> None:
    body = document(
        rule_xml(head="<ID></ID><Prefix>a/</Prefix><Status>Enabled</Status>"),
        rule_xml(head="<Prefix>b/</Prefix><Status>Enabled</Status>"),
        rule_xml(head="<ID/><Prefix>c/</Prefix><Status>Enabled</Status>"),
        rule_xml(head="<ID>mine</ID><Prefix>d/</Prefix><Status>Enabled</Status>"),
    )
    ids = [rule.id for rule in parse_lifecycle(body).rules]
    assert all(ids) and len(set(ids)) == 4 and ids[3] == "mine"


def test_markup_in_text_survives() -> None:
    nasty = "a&b<c>\"d'e é 中 \r\n\t"
    config = LifecycleConfiguration(
        (
            LifecycleRule(
                nasty,
                nasty,
                True,
                tags=(TagFilter(nasty, nasty),),
                nots=(NotFilter(nasty + "x", TagFilter(nasty, nasty)),),
                expiration=Expiration(Timing(days=1)),
            ),
        )
    )
    assert parse_lifecycle(render_lifecycle(config)) == config
    result = o2.BucketLifecycle()
    xml_utils.parse_get_bucket_lifecycle(result, render_lifecycle(config))
    # ElementTree turns the escaped \r back into \r; nothing is lost for oss2 either.
    assert result.rules[0].prefix == nasty


# -- refusals ------------------------------------------------------------------------------

MALFORMED = [
    (b"", "empty"),
    (b"not xml", ""),
    (b"<LifecycleConfiguration><Rule>", ""),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><LifecycleConfiguration/>', "DTD"),
    (document(rule_xml(), root="Lifecycle"), "root"),
    (document(), "at least one Rule"),
    (document("<Other/>"), "<Other>"),
    (document(rule_xml("<Bogus/><Expiration><Days>1</Days></Expiration>")), "<Bogus>"),
    (document(rule_xml(head="<ID>r</ID><Prefix/>")), "<Status>"),
    (
        document(rule_xml(head="<ID>r</ID><Status>Enabled</Status><Status>Enabled</Status>")),
        "more than once",
    ),
    (document(rule_xml("<Expiration><Days>1</Days></Expiration>" * 2)), "more than once"),
    (document(rule_xml("<Expiration/>")), "<Expiration> needs"),
    (document(rule_xml("<Expiration><Days>1</Days><Foo/></Expiration>")), "<Foo>"),
    (document(rule_xml("<Transition><Days>1</Days></Transition>")), "<StorageClass>"),
    (document(rule_xml("<Transition><StorageClass>IA</StorageClass></Transition>")), "<Days>"),
    (document(rule_xml("<AbortMultipartUpload/>")), "<AbortMultipartUpload> needs"),
    (
        document(
            rule_xml(
                "<AbortMultipartUpload><IsAccessTime>true</IsAccessTime><Days>2</Days>"
                "</AbortMultipartUpload>"
            )
        ),
        "<IsAccessTime>",
    ),
    (document(rule_xml("<NoncurrentVersionExpiration/>")), "<NoncurrentDays>"),
    (
        document(
            rule_xml(
                "<NoncurrentVersionTransition><NoncurrentDays>1</NoncurrentDays>"
                "</NoncurrentVersionTransition>"
            )
        ),
        "<StorageClass>",
    ),
    (
        document(rule_xml("<Tag><Value>v</Value></Tag><Expiration><Days>1</Days></Expiration>")),
        "<Key>",
    ),
    (document(rule_xml("<Filter><Prefix>x</Prefix></Filter>")), "<Prefix>"),
    (
        document(
            rule_xml("<Filter><Not><Tag><Key>k</Key></Tag><Tag><Key>j</Key></Tag></Not></Filter>")
        ),
        "more than once",
    ),
]


@pytest.mark.parametrize(("body", "fragment"), MALFORMED)
def test_malformed(body: bytes, fragment: str) -> None:
    refused(body, "MalformedXML", fragment)


INVALID = [
    (document(rule_xml(head="<ID>r</ID><Status>enabled</Status>")), "Status"),
    (document(rule_xml(head="<ID>r</ID><Status>On</Status>")), "Status"),
    (document(rule_xml("<Expiration><Days>abc</Days></Expiration>")), "Days"),
    (document(rule_xml("<Expiration><Days>-1</Days></Expiration>")), "Days"),
    (document(rule_xml("<Expiration><Days>0</Days></Expiration>")), "positive"),
    (document(rule_xml("<Expiration><Days>1.5</Days></Expiration>")), "Days"),
    (document(rule_xml("<Expiration><Days></Days></Expiration>")), "Days"),
    (document(rule_xml("<Expiration><Days>99999999999999999999</Days></Expiration>")), "Days"),
    (
        document(
            rule_xml(
                "<Expiration><Days>1</Days><CreatedBeforeDate>2023-01-01"
                "</CreatedBeforeDate></Expiration>"
            )
        ),
        "only one",
    ),
    (
        document(
            rule_xml(
                "<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true"
                "</ExpiredObjectDeleteMarker></Expiration>"
            )
        ),
        "cannot be combined",
    ),
    (
        document(
            rule_xml(
                "<Expiration><ExpiredObjectDeleteMarker>false"
                "</ExpiredObjectDeleteMarker></Expiration>"
            )
        ),
        "Expiration needs",
    ),
    (
        document(
            rule_xml(
                "<Expiration><ExpiredObjectDeleteMarker>yes"
                "</ExpiredObjectDeleteMarker></Expiration>"
            )
        ),
        "true or false",
    ),
    (
        document(
            rule_xml("<Transition><Days>1</Days><StorageClass>Standard</StorageClass></Transition>")
        ),
        "StorageClass",
    ),
    (
        document(
            rule_xml("<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>")
        ),
        "StorageClass",
    ),
    (
        document(
            rule_xml(
                "<Transition><Days>9</Days><StorageClass>IA</StorageClass></Transition>"
                "<Expiration><Days>9</Days></Expiration>"
            )
        ),
        "before the Expiration",
    ),
    (
        document(
            rule_xml(
                "<Filter><ObjectSizeGreaterThan>-5</ObjectSizeGreaterThan></Filter>"
                "<Expiration><Days>1</Days></Expiration>"
            )
        ),
        "ObjectSizeGreaterThan",
    ),
    (
        document(
            rule_xml(
                "<Filter><ObjectSizeLessThan>x</ObjectSizeLessThan></Filter>"
                "<Expiration><Days>1</Days></Expiration>"
            )
        ),
        "ObjectSizeLessThan",
    ),
    (document(rule_xml("")), "no action"),
    (
        document(
            rule_xml(head="<ID>same</ID><Prefix>a</Prefix><Status>Enabled</Status>"),
            rule_xml(head="<ID>same</ID><Prefix>b</Prefix><Status>Enabled</Status>"),
        ),
        "more than one rule",
    ),
    (document(rule_xml(head=f"<ID>{'x' * 256}</ID><Status>Enabled</Status>")), "255"),
    (
        document(
            rule_xml(head="<ID>a</ID><Prefix>p/</Prefix><Status>Enabled</Status>"),
            rule_xml(head="<ID>b</ID><Prefix>p/q</Prefix><Status>Disabled</Status>"),
        ),
        "Overlap for same action type Expiration",
    ),
]


@pytest.mark.parametrize(("body", "fragment"), INVALID)
def test_invalid(body: bytes, fragment: str) -> None:
    refused(body, "InvalidArgument", fragment)


def test_overlap_may_be_allowed() -> None:
    body = document(
        rule_xml(head="<ID>a</ID><Prefix>p/</Prefix><Status>Enabled</Status>"),
        rule_xml(head="<ID>b</ID><Prefix>p/q</Prefix><Status>Enabled</Status>"),
    )
    config = parse_lifecycle(body, allow_same_action_overlap=True)
    assert [rule.id for rule in config.rules] == ["a", "b"]


def test_rule_limit() -> None:
    rules = [
        rule_xml(head=f"<ID>r{i}</ID><Prefix>p{i:04d}/</Prefix><Status>Enabled</Status>")
        for i in range(MAX_RULES + 1)
    ]
    assert len(parse_lifecycle(document(*rules[:MAX_RULES])).rules) == MAX_RULES
    refused(document(*rules), "InvalidArgument", str(MAX_RULES))


# -- what oss2 sends, and what it reads ----------------------------------------------------


def tagging_rule(**tags: str) -> o2.TaggingRule:
    rule = o2.TaggingRule()
    for key, value in tags.items():
        rule.add(key, value)
    return rule


def oss2_rules() -> list[o2.LifecycleRule]:
    return [
        o2.LifecycleRule(
            "by-date",
            "logs/",
            status=o2.LifecycleRule.ENABLED,
            expiration=o2.LifecycleExpiration(created_before_date=datetime.date(2023, 1, 1)),
            abort_multipart_upload=o2.AbortMultipartUpload(days=3),
            storage_transitions=[
                o2.StorageTransition(
                    created_before_date=datetime.date(2023, 6, 1),
                    storage_class=o2.BUCKET_STORAGE_CLASS_IA,
                )
            ],
            tagging=o2.Tagging(o2.TaggingRule()),
            filter=o2.LifecycleFilter(),
        ),
        o2.LifecycleRule(
            "",
            "versions/",
            status=o2.LifecycleRule.DISABLED,
            expiration=o2.LifecycleExpiration(expired_detete_marker=True),
            noncurrent_version_expiration=o2.NoncurrentVersionExpiration(10),
            noncurrent_version_sotrage_transitions=[
                o2.NoncurrentVersionStorageTransition(
                    5,
                    "IA",
                    is_access_time=True,
                    return_to_std_when_visit=True,
                    allow_small_file=True,
                )
            ],
            filter=o2.LifecycleFilter(filter_not=[o2.FilterNot(tag=o2.FilterNotTag("k", "v"))]),
        ),
        o2.LifecycleRule(
            "by-days",
            "img/",
            expiration=o2.LifecycleExpiration(days=365),
            storage_transitions=[
                o2.StorageTransition(
                    days=30, storage_class="IA", is_access_time=True, return_to_std_when_visit=False
                ),
                o2.StorageTransition(days=60, storage_class="Archive"),
                o2.StorageTransition(days=90, storage_class="ColdArchive"),
                o2.StorageTransition(days=120, storage_class="DeepColdArchive"),
            ],
            tagging=o2.Tagging(tagging_rule(a="1", b="")),
            filter=o2.LifecycleFilter(
                object_size_greater_than=10,
                object_size_less_than=10**9,
                filter_not=[o2.FilterNot("img/keep/", o2.FilterNotTag("keep", "yes"))],
            ),
        ),
    ]


def test_what_oss2_sends() -> None:
    body = xml_utils.to_put_bucket_lifecycle(o2.BucketLifecycle(oss2_rules()))
    first, second, third = parse_lifecycle(body).rules
    assert first == LifecycleRule(
        "by-date",
        "logs/",
        True,
        expiration=Expiration(Timing(created_before_ms=JAN_2023)),
        transitions=(Transition(Timing(created_before_ms=JAN_2023 + 151 * DAY_MS), "IA"),),
        abort_multipart=Timing(days=3),
    )
    assert second == LifecycleRule(
        second.id,
        "versions/",
        False,
        nots=(NotFilter("", TagFilter("k", "v")),),
        expiration=Expiration(None, True),
        noncurrent_expiration_days=10,
        noncurrent_transitions=(NoncurrentTransition(5, "IA", True, True, True),),
    )
    assert second.id
    assert third == LifecycleRule(
        "by-days",
        "img/",
        True,
        tags=(TagFilter("a", "1"), TagFilter("b", "")),
        size_greater_than=10,
        size_less_than=10**9,
        nots=(NotFilter("img/keep/", TagFilter("keep", "yes")),),
        expiration=Expiration(Timing(days=365)),
        transitions=(
            Transition(Timing(days=30), "IA", is_access_time=True),
            Transition(Timing(days=60), "Archive"),
            Transition(Timing(days=90), "ColdArchive"),
            Transition(Timing(days=120), "DeepColdArchive"),
        ),
    )


def oss2_reads(config: LifecycleConfiguration) -> list[o2.LifecycleRule]:
    result = o2.BucketLifecycle()
    xml_utils.parse_get_bucket_lifecycle(result, render_lifecycle(config))
    return list(result.rules)


def test_oss2_reads_what_we_render() -> None:
    body = xml_utils.to_put_bucket_lifecycle(o2.BucketLifecycle(oss2_rules()))
    config = parse_lifecycle(body)
    first, second, third = oss2_reads(config)
    local = datetime.date.fromtimestamp  # oss2 converts dates through local time
    assert (first.id, first.prefix, first.status) == ("by-date", "logs/", "Enabled")
    assert first.expiration.created_before_date == local(JAN_2023 // 1000)
    assert first.storage_transitions[0].created_before_date == local(
        (JAN_2023 + 151 * DAY_MS) // 1000
    )
    assert first.storage_transitions[0].storage_class == "IA"
    assert first.abort_multipart_upload.days == 3
    assert first.tagging is None
    assert (second.id, second.status) == (config.rules[1].id, "Disabled")
    assert second.expiration.expired_detete_marker is True
    assert second.noncurrent_version_expiration.noncurrent_days == 10
    nc = second.noncurrent_version_sotrage_transitions[0]
    assert (nc.noncurrent_days, nc.storage_class) == (5, "IA")
    assert nc.is_access_time and nc.return_to_std_when_visit and nc.allow_small_file
    assert second.filter.filter_not[0].prefix == ""
    assert (second.filter.filter_not[0].tag.key, second.filter.filter_not[0].tag.value) == (
        "k",
        "v",
    )
    assert third.expiration.days == 365
    assert [(t.days, t.storage_class) for t in third.storage_transitions] == [
        (30, "IA"),
        (60, "Archive"),
        (90, "ColdArchive"),
        (120, "DeepColdArchive"),
    ]
    assert third.storage_transitions[0].is_access_time is True
    assert third.storage_transitions[1].is_access_time is None  # absent, not "false"
    assert third.tagging.tag_set.tagging_rule == {"a": "1", "b": ""}
    assert (third.filter.object_size_greater_than, third.filter.object_size_less_than) == (
        10,
        10**9,
    )


def test_oss2_reads_the_spec_example() -> None:
    (rule,) = oss2_reads(SPEC_MODEL)
    assert rule.noncurrent_version_sotrage_transitions[0].storage_class == "IA"
    assert rule.filter.filter_not[0].prefix == "logs/keep/"
    assert rule.tagging.tag_set.tagging_rule == {"type": "log"}


# -- what v2 sends, and what it reads ------------------------------------------------------


def v2_configuration() -> v2.LifecycleConfiguration:
    return v2.LifecycleConfiguration(
        rules=[
            v2.LifecycleRule(
                id="v2-rule",
                prefix="data/",
                status="Enabled",
                expiration=v2.LifecycleRuleExpiration(
                    created_before_date=datetime.datetime(2023, 1, 1, tzinfo=UTC)
                ),
                transitions=[
                    v2.LifecycleRuleTransition(
                        created_before_date=datetime.datetime(2023, 3, 1, tzinfo=UTC),
                        storage_class="IA",
                        is_access_time=False,
                    ),
                    v2.LifecycleRuleTransition(
                        created_before_date=datetime.datetime(2023, 2, 1, tzinfo=UTC),
                        storage_class=v2.StorageClassType.ARCHIVE,
                    ),
                ],
                abort_multipart_upload=v2.LifecycleRuleAbortMultipartUpload(
                    created_before_date=datetime.datetime(2023, 1, 1, tzinfo=UTC)
                ),
                tags=[v2.Tag(key="k", value="v")],
                filter=v2.LifecycleRuleFilter(
                    object_size_greater_than=1,
                    object_size_less_than=100,
                    nots=[v2.LifecycleRuleNot(prefix="data/x", tag=v2.Tag(key="a", value="b"))],
                ),
                noncurrent_version_expiration=v2.NoncurrentVersionExpiration(noncurrent_days=9),
                noncurrent_version_transitions=[
                    v2.NoncurrentVersionTransition(
                        noncurrent_days=3, storage_class="Archive", return_to_std_when_visit=True
                    )
                ],
                atime_base=1600000000,
            ),
            v2.LifecycleRule(
                prefix="marker/",
                status="Enabled",
                expiration=v2.LifecycleRuleExpiration(expired_object_delete_marker=True),
            ),
        ]
    )


def test_what_v2_sends() -> None:
    body = serde.serialize_xml(v2_configuration())
    assert b"<CreatedBeforeDate>2023-01-01T00:00:00Z</CreatedBeforeDate>" in body
    assert b"<CreatedBeforeDate>2023-03-01T00:00:00.000Z</CreatedBeforeDate>" in body
    first, second = parse_lifecycle(body).rules
    assert first == LifecycleRule(
        "v2-rule",
        "data/",
        True,
        tags=(TagFilter("k", "v"),),
        size_greater_than=1,
        size_less_than=100,
        nots=(NotFilter("data/x", TagFilter("a", "b")),),
        expiration=Expiration(Timing(created_before_ms=JAN_2023)),
        transitions=(
            Transition(Timing(created_before_ms=JAN_2023 + 59 * DAY_MS), "IA"),
            Transition(Timing(created_before_ms=JAN_2023 + 31 * DAY_MS), "Archive"),
        ),
        abort_multipart=Timing(created_before_ms=JAN_2023),
        noncurrent_expiration_days=9,
        noncurrent_transitions=(NoncurrentTransition(3, "Archive", return_to_std_when_visit=True),),
    )
    assert second.id and second.expiration == Expiration(None, True)


def v2_reads(config: LifecycleConfiguration) -> v2.LifecycleConfiguration:
    result = v2.LifecycleConfiguration()
    serde.deserialize_xml(render_lifecycle(config), result, "LifecycleConfiguration")
    return result


def test_v2_reads_what_we_render() -> None:
    config = parse_lifecycle(serde.serialize_xml(v2_configuration()))
    first, second = v2_reads(config).rules
    assert (first.id, first.prefix, first.status) == ("v2-rule", "data/", "Enabled")
    midnight = datetime.datetime(2023, 1, 1, tzinfo=UTC)
    assert first.expiration.created_before_date == midnight
    assert first.abort_multipart_upload.created_before_date == midnight
    assert [(t.storage_class, t.created_before_date.month) for t in first.transitions] == [
        ("IA", 3),
        ("Archive", 2),
    ]
    assert [(t.key, t.value) for t in first.tags] == [("k", "v")]
    assert (first.filter.object_size_greater_than, first.filter.object_size_less_than) == (1, 100)
    assert first.filter.nots[0].prefix == "data/x"
    assert (first.filter.nots[0].tag.key, first.filter.nots[0].tag.value) == ("a", "b")
    assert first.noncurrent_version_expiration.noncurrent_days == 9
    nc = first.noncurrent_version_transitions[0]
    assert (nc.noncurrent_days, nc.storage_class, nc.return_to_std_when_visit) == (
        3,
        "Archive",
        True,
    )
    assert second.id == config.rules[1].id
    assert second.expiration.expired_object_delete_marker is True


def test_v2_reads_the_spec_example() -> None:
    (rule,) = v2_reads(SPEC_MODEL).rules
    assert [t.days for t in rule.transitions] == [30, 60, 180, 360]
    assert rule.expiration.days == 720
    assert rule.abort_multipart_upload.days == 7


# -- random valid configurations -----------------------------------------------------------

TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("&<>\"'\r\n\t"),
    max_size=12,
)
DATES = st.integers(0, 30000).map(lambda d: d * DAY_MS)


@st.composite
def valid_rules(draw: st.DrawFn, index: int) -> LifecycleRule:
    tags = draw(st.dictionaries(TEXT.filter(bool), TEXT, max_size=3))
    low = draw(st.none() | st.integers(0, 1000))
    high = draw(st.none() | st.integers((low or 0) + 1, 10**12))
    sized = low is not None or high is not None
    nots = draw(
        st.lists(
            st.builds(
                NotFilter,
                TEXT.filter(bool),
                st.none() | st.builds(TagFilter, TEXT.filter(bool), TEXT),
            ),
            max_size=2,
        )
    )
    expire_days = draw(st.integers(10, 5000))
    expiration = draw(
        st.none()
        | st.just(Expiration(Timing(days=expire_days)))
        | st.just(Expiration(None, True))
        | DATES.map(lambda ms: Expiration(Timing(created_before_ms=ms)))
    )
    classes = draw(st.lists(st.sampled_from(TRANSITION_CLASSES), unique=True, max_size=4))
    classes.sort(key=TRANSITION_CLASSES.index)
    limit = expire_days - 1 if expiration and expiration.timing and expiration.timing.days else 9999
    ages = sorted(
        draw(
            st.lists(
                st.integers(1, limit), unique=True, min_size=len(classes), max_size=len(classes)
            )
        )
    )
    transitions = tuple(
        Transition(
            Timing(days=age),
            cls,
            draw(st.booleans()),
            draw(st.booleans()),
            draw(st.booleans()) and not sized,
        )
        for cls, age in zip(classes, ages, strict=True)
    )
    nc_classes = draw(st.lists(st.sampled_from(TRANSITION_CLASSES), unique=True, max_size=4))
    nc_classes.sort(key=TRANSITION_CLASSES.index)
    nc_ages = sorted(
        draw(
            st.lists(
                st.integers(1, 999), unique=True, min_size=len(nc_classes), max_size=len(nc_classes)
            )
        )
    )
    nc_transitions = tuple(
        NoncurrentTransition(
            age, cls, draw(st.booleans()), draw(st.booleans()), draw(st.booleans()) and not sized
        )
        for cls, age in zip(nc_classes, nc_ages, strict=True)
    )
    abort = draw(
        st.none()
        | st.builds(Timing, days=st.integers(1, 99))
        | DATES.map(lambda ms: Timing(created_before_ms=ms))
    )
    nc_expiration = draw(st.none() | st.integers(1000, 2000))
    if not (expiration or transitions or abort or nc_expiration or nc_transitions):
        abort = Timing(days=1)
    return LifecycleRule(
        id=f"{index}-{draw(TEXT)}",
        prefix=draw(TEXT),
        enabled=draw(st.booleans()),
        tags=tuple(TagFilter(k, v) for k, v in tags.items()),
        size_greater_than=low,
        size_less_than=high,
        nots=tuple(nots),
        expiration=expiration,
        transitions=transitions,
        abort_multipart=abort,
        noncurrent_expiration_days=nc_expiration,
        noncurrent_transitions=nc_transitions,
    )


@st.composite
def valid_configs(draw: st.DrawFn) -> LifecycleConfiguration:
    count = draw(st.integers(1, 4))
    config = LifecycleConfiguration(tuple(draw(valid_rules(i)) for i in range(count)))
    validate(config, allow_same_action_overlap=True)
    return config


@settings(max_examples=150, deadline=None)
@given(valid_configs())
def test_render_parse_round_trip(config: LifecycleConfiguration) -> None:
    rendered = render_lifecycle(config)
    assert parse_lifecycle(rendered, allow_same_action_overlap=True) == config


@settings(max_examples=60, deadline=None)
@given(valid_configs())
def test_both_sdks_read_any_rendering(config: LifecycleConfiguration) -> None:
    read_by_oss2 = oss2_reads(config)
    read_by_v2 = v2_reads(config).rules
    for ours, theirs, also in zip(config.rules, read_by_oss2, read_by_v2, strict=True):
        assert (theirs.id, theirs.prefix) == (ours.id, ours.prefix)
        assert (also.id, also.prefix or "") == (ours.id, ours.prefix)
        assert theirs.status == also.status == ("Enabled" if ours.enabled else "Disabled")
        assert len(theirs.storage_transitions) == len(ours.transitions)
        assert len(also.transitions or []) == len(ours.transitions)
