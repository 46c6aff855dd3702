"""The hardened MNS XML reader and the escaped-string writer (`tidings.api.mns.xml`).

Hostile bodies (entity expansion, external entities, DTDs, deep nesting, garbage) must
be refused with `MalformedXML`, and fast: a refusal that first expands the entities is
no refusal. The writer must escape markup, replace characters XML cannot carry, and
render documents with a default namespace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tidings.api.mns.xml import (
    DECLARATION,
    NAMESPACE,
    boolean,
    document,
    element,
    escape,
    fields,
    local_name,
    parse,
    text,
)
from tidings.errors import ServiceError

QUICK_SECONDS = 1.0
NS = f"{{{NAMESPACE}}}"


def billion_laughs(levels: int = 10, root: str = "Message") -> bytes:
    """The classic internal-entity expansion bomb: 10**levels copies of 'lol'."""
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return (
        f'<?xml version="1.0"?><!DOCTYPE {root} [{"".join(entities)}]>'
        f"<{root}><MessageBody>&lol{levels - 1};</MessageBody></{root}>"
    ).encode()


def external_entity(uri: str = "file:///etc/passwd") -> bytes:
    """A body that would inline a local file (or fetch a URL) if entities were resolved."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE Message [<!ENTITY xxe SYSTEM "{uri}">]>'
        "<Message><MessageBody>&xxe;</MessageBody></Message>"
    ).encode()


def nested(depth: int) -> bytes:
    """`depth` nested elements."""
    return b"<a>" * depth + b"</a>" * depth


@contextmanager
def refused_quickly() -> Iterator[None]:
    """Expect `MalformedXML` within QUICK_SECONDS."""
    started = time.perf_counter()
    with pytest.raises(ServiceError) as caught:
        yield
    assert caught.value.code == "MalformedXML"
    assert time.perf_counter() - started < QUICK_SECONDS


# -- parse(): refusals --------------------------------------------------------------------


def test_billion_laughs_is_refused_without_expansion() -> None:
    with refused_quickly():
        parse(billion_laughs())


def test_quadratic_blowup_is_refused() -> None:
    big = "x" * 50_000
    body = (
        f'<?xml version="1.0"?><!DOCTYPE Message [<!ENTITY a "{big}">]>'
        f"<Message><MessageBody>{'&a;' * 5000}</MessageBody></Message>"
    ).encode()
    with refused_quickly():
        parse(body)


@pytest.mark.parametrize(
    "uri", ["file:///etc/passwd", "http://127.0.0.1:1/evil.dtd", "/etc/hostname"]
)
def test_external_entity_is_refused(uri: str) -> None:
    with refused_quickly():
        parse(external_entity(uri))


def test_external_parameter_entity_is_refused() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE Message [<!ENTITY % remote SYSTEM'
        b' "http://127.0.0.1:1/evil.dtd"> %remote;]><Message/>'
    )
    with refused_quickly():
        parse(body)


def test_external_dtd_is_refused() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE Message SYSTEM "file:///etc/passwd"><Message/>'
    with refused_quickly():
        parse(body)


@pytest.mark.parametrize("keyword", ["DOCTYPE", "doctype", "DocType", "dOcTyPe"])
def test_doctype_in_any_case_is_refused(keyword: str) -> None:
    with refused_quickly():
        parse(f"<!{keyword} Message><Message/>".encode())


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE Message [<!ENTITY a "b">]><Message>&a;</Message>',
        b"<!DOCTYPE Message [<!ELEMENT Message ANY>]><Message/>",
        b'<!ENTITY a "b"><Message/>',
        b"<!entity a 'b'><Message/>",
        b"\xef\xbb\xbf<!DOCTYPE Message><Message/>",  # after a UTF-8 byte-order mark
        b'<?xml version="1.0"?>\n\n   <!DOCTYPE Message><Message/>',
    ],
    ids=["internal-entity", "element-decl", "bare-entity", "lower-entity", "bom", "whitespace"],
)
def test_dtd_variants_are_refused(body: bytes) -> None:
    with refused_quickly():
        parse(body)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_doctype_in_a_utf16_body_is_refused(encoding: str) -> None:
    body = (
        f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
        '<!DOCTYPE Message [<!ENTITY a "xyz">]><Message><MessageBody>A&a;B</MessageBody></Message>'
    ).encode(encoding)
    with refused_quickly():
        parse(body)


def test_utf16_billion_laughs_is_still_not_expanded() -> None:
    """Even past the DTD check, libxml2's amplification guard stops the bomb."""
    body = billion_laughs().replace(b'version="1.0"', b'version="1.0" encoding="UTF-16"')
    with refused_quickly():
        parse(body.decode().encode("utf-16"))


@pytest.mark.parametrize("depth", [100_000, 10_000, 300])
def test_deep_nesting_is_refused(depth: int) -> None:
    with refused_quickly():
        parse(nested(depth))


def test_moderate_nesting_is_accepted() -> None:
    assert local_name(parse(nested(50))) == "a"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n\t ",
        b"not xml",
        b"<Message>",
        b"<Message></Queue>",
        b"<a><b></a></b>",
        b"<a/><b/>",
        b"<Message>&unknown;</Message>",
        b"<Message>&#0;</Message>",
        b"<Message>\x00</Message>",
        b"<Message a='1' a='2'/>",
        b"<p:Message><p:MessageBody>x</p:MessageBody></p:Message>",  # unbound prefix
        b"\xff\xfe\xfd",
        b'<?xml version="1.0" encoding="no-such-encoding"?><Message/>',
        b"<Message><![CDATA[x</Message>",
    ],
)
def test_not_well_formed_is_refused(body: bytes) -> None:
    with refused_quickly():
        parse(body)


def test_refusal_message_says_what_is_wrong() -> None:
    with pytest.raises(ServiceError) as caught:
        parse(billion_laughs())
    assert "DTD" in caught.value.message


# -- parse(): what it accepts -------------------------------------------------------------


def test_parses_an_sdk_request_body() -> None:
    root = parse(
        b'<?xml version="1.0" encoding="utf-8"?><Message xmlns="http://mns.aliyuncs.com/doc/v1/">'
        b"<MessageBody>a &amp; b &lt;c&gt; &quot;d&quot;</MessageBody><Priority>3</Priority>"
        b"</Message>"
    )
    assert local_name(root) == "Message"
    children = fields(root)
    assert text(children["MessageBody"]) == 'a & b <c> "d"'
    assert text(children["Priority"]) == "3"
    assert text(children.get("DelaySeconds")) is None


def test_parse_accepts_namespace_variants_and_whitespace() -> None:
    for namespace in ('xmlns="http://mns.aliyuncs.com/doc/v1"', ""):
        root = parse(f"<Queue {namespace}>\n  <DelaySeconds> 5 </DelaySeconds>\n</Queue>".encode())
        assert local_name(root) == "Queue"
        assert text(fields(root)["DelaySeconds"]) == " 5 "


def test_parse_drops_comments_and_processing_instructions() -> None:
    root = parse(b"<Message><!-- note --><?pi x?><MessageBody>a<!-- c -->b</MessageBody></Message>")
    assert [local_name(child) for child in root] == ["MessageBody"]
    assert text(fields(root)["MessageBody"]) == "ab"


def test_cdata_is_read_as_text() -> None:
    root = parse(b"<Message><MessageBody><![CDATA[<not markup> & co]]></MessageBody></Message>")
    assert text(fields(root)["MessageBody"]) == "<not markup> & co"


# -- element() / escape() -----------------------------------------------------------------


def test_escape_markup_characters() -> None:
    assert escape('a & b < c > d " e') == "a &amp; b &lt; c &gt; d &quot; e"
    assert escape("&amp;") == "&amp;amp;"  # no double-decoding shortcuts
    assert escape("]]>") == "]]&gt;"


def test_element_escapes_text_and_leaves_integers_alone() -> None:
    assert element("MessageBody", '<x a="1">&</x>') == (
        "<MessageBody>&lt;x a=&quot;1&quot;&gt;&amp;&lt;/x&gt;</MessageBody>"
    )
    assert element("DequeueCount", 7) == "<DequeueCount>7</DequeueCount>"
    assert element("Empty", "") == "<Empty></Empty>"


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1f", "\ufffe", "\uffff"]
)
def test_xml_illegal_characters_are_replaced(char: str) -> None:
    assert escape(f"a{char}b") == "a\ufffdb"
    rendered = document("Message", [element("MessageBody", f"a{char}b")])
    assert text(fields(etree.fromstring(rendered))["MessageBody"]) == "a\ufffdb"


@pytest.mark.parametrize("char", ["\t", "\n", "\x7f", "\x85", "\u2028", "\U0001f600", "é"])
def test_legal_characters_are_kept(char: str) -> None:
    assert escape(f"a{char}b") == f"a{char}b"


def test_carriage_return_survives_a_round_trip() -> None:
    rendered = document("Message", [element("MessageBody", "line1\r\nline2")])
    assert text(fields(etree.fromstring(rendered))["MessageBody"]) == "line1\r\nline2"


_ILLEGAL = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_ILLEGAL += "\ufffe\uffff"


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8")))
def test_property_rendered_text_parses_back(value: str) -> None:
    """Whatever the text, the document is well formed and carries the text back
    (illegal characters replaced)."""
    rendered = document("Message", [element("MessageBody", value)])
    expected = "".join("\ufffd" if c in _ILLEGAL else c for c in value)
    assert text(fields(parse(rendered))["MessageBody"]) == expected


# -- document() ---------------------------------------------------------------------------


def test_document_uses_a_default_namespace_and_the_declaration() -> None:
    rendered = document("Queue", [element("QueueName", "q1"), element("DelaySeconds", 0)])
    assert rendered.startswith(DECLARATION.encode())
    assert rendered.decode().endswith(
        '<Queue xmlns="http://mns.aliyuncs.com/doc/v1/"><QueueName>q1</QueueName>'
        "<DelaySeconds>0</DelaySeconds></Queue>"
    )
    root = etree.fromstring(rendered)
    assert root.tag == f"{NS}Queue"
    assert root.prefix is None
    assert [child.tag for child in root] == [f"{NS}QueueName", f"{NS}DelaySeconds"]


def test_empty_document_self_closes() -> None:
    rendered = document("Queues", [])
    assert rendered == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Queues xmlns="http://mns.aliyuncs.com/doc/v1/"/>'
    )
    assert etree.fromstring(rendered).tag == f"{NS}Queues"


def test_document_from_a_generator_of_parts() -> None:
    rendered = document(
        "Messages", (f"<Message>{element('MessageId', str(i))}</Message>" for i in range(3))
    )
    root = etree.fromstring(rendered)
    assert [text(message) for message in root] == ["0", "1", "2"]


def test_boolean_is_capitalised() -> None:
    assert (boolean(True), boolean(False)) == ("True", "False")
