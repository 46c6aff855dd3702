"""The streaming PostObject form parser (spec 7.9).

Bodies come from real encoders (urllib3, requests, aiohttp) where possible, and by hand
where a browser or an RFC corner case needs exact bytes. Every body is fed through a fake
ASGI `receive` in several chunkings, because boundary handling across chunk edges is
where streaming parsers break.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import aiohttp
import pytest
import requests
import urllib3
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tidings.api.http import Message, Receive
from tidings.api.oss.post_form import FIELD_LIMIT, PostForm, read_post_form
from tidings.errors import ServiceError

BOUNDARY = "----WebKitFormBoundaryW0DET1iaBMeAOBg3"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
Fields = list[tuple[str, Any]]


def encode(fields: Fields) -> bytes:
    """A multipart body with the fixed BOUNDARY, via urllib3's encoder."""
    body, content_type = urllib3.encode_multipart_formdata(fields, boundary=BOUNDARY)
    assert content_type == CONTENT_TYPE
    return body


def chunked(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    """`data` cut into pieces whose sizes cycle through `sizes`."""
    pos, pattern = 0, list(sizes)
    while pos < len(data):
        for size in pattern:
            yield data[pos : pos + size]
            pos += size
            if pos >= len(data):
                return


def make_receive(chunks: Iterable[bytes], *, disconnect: bool = False) -> Receive:
    """An ASGI receive replaying `chunks`, the last with more_body False.

    With `disconnect`, every chunk has more_body True and an http.disconnect follows.
    Calls after the body ended fail the test, as ASGI forbids them.
    """

    def messages() -> Iterator[Message]:
        # Lazy, so a large body is never held by the test itself; one chunk of look-ahead
        # tells the last chunk apart.
        pieces = iter(chunks)
        current = next(pieces, b"")
        while True:
            following = next(pieces, None)
            last = following is None and not disconnect
            yield {"type": "http.request", "body": current, "more_body": not last}
            if following is None:
                break
            current = following
        if disconnect:
            yield {"type": "http.disconnect"}

    feed = messages()

    async def receive() -> Message:
        message = next(feed, None)
        assert message is not None, "receive() called after the body ended"
        return message

    return receive


async def drain(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def parse(
    body: bytes, sizes: Iterable[int] = (1 << 20,), content_type: str = CONTENT_TYPE
) -> tuple[PostForm, bytes]:
    form = await read_post_form(make_receive(chunked(body, sizes)), content_type)
    return form, await drain(form.file)


CHUNKINGS = [(1 << 20,), (1,), (2, 3), (7,), (64,), (5, 1, 13, 2, 40)]

OSS_FORM: Fields = [
    ("Key", "uploads/${filename}"),
    ("Policy", "eyJleHBpcmF0aW9uIjoiMjAyNS0wMy0xNFQxMjowMDowMC4wMDBaIn0="),
    ("OSSAccessKeyId", "AKIDEXAMPLE"),
    ("Signature", "miAoLVohS5WEXyC3wVecaQ="),
    ("x-oss-meta-Colour", "blau \u00fcber\r\nzwei Zeilen"),
    ("success_action_status", "201"),
    ("file", ("cat.jpg", b"\xff\xd8 jpeg \r\n--not-the-boundary\r\n", "image/jpeg")),
]
OSS_FIELDS = {
    "key": "uploads/${filename}",
    "policy": "eyJleHBpcmF0aW9uIjoiMjAyNS0wMy0xNFQxMjowMDowMC4wMDBaIn0=",
    "ossaccesskeyid": "AKIDEXAMPLE",
    "signature": "miAoLVohS5WEXyC3wVecaQ=",
    "x-oss-meta-colour": "blau \u00fcber\r\nzwei Zeilen",
    "success_action_status": "201",
}


@pytest.mark.parametrize("sizes", CHUNKINGS)
async def test_fields_and_file_in_any_chunking(sizes: tuple[int, ...]) -> None:
    form, data = await parse(encode(OSS_FORM), sizes)
    assert form.fields == OSS_FIELDS
    assert (form.file_name, form.file_content_type) == ("cat.jpg", "image/jpeg")
    assert data == b"\xff\xd8 jpeg \r\n--not-the-boundary\r\n"


@pytest.mark.parametrize("seed", range(20))
async def test_random_chunk_sizes(seed: int) -> None:
    rng = random.Random(seed)
    payload = rng.randbytes(rng.randrange(0, 5000)) + f"\r\n--{BOUNDARY[:-1]}".encode()
    body = encode([("key", "k"), ("file", ("f", payload, "application/octet-stream"))])
    sizes = [rng.randrange(1, 300) for _ in range(rng.randrange(1, 10))]
    form, data = await parse(body, sizes)
    assert form.fields == {"key": "k"}
    assert data == payload


async def test_requests_encoder() -> None:
    body, content_type = requests.models.RequestEncodingMixin._encode_files(
        {"file": ("n.txt", b"x\r\n--", "text/plain")}, {"policy": "p", "OSSAccessKeyId": "ak"}
    )
    form, data = await parse(body, (3,), content_type)
    assert form.fields == {"policy": "p", "ossaccesskeyid": "ak"}
    assert (form.file_name, form.file_content_type, data) == ("n.txt", "text/plain", b"x\r\n--")


async def test_aiohttp_encoder_with_headers_in_other_order() -> None:
    form_data = aiohttp.FormData(quote_fields=False)
    form_data.add_field("Key", "k")
    form_data.add_field("file", b"abc", filename="a b.txt", content_type="text/plain")
    writer = form_data()
    form, data = await parse(await writer.as_bytes(), (5,), writer.content_type)
    assert form.fields == {"key": "k"}
    assert (form.file_name, form.file_content_type, data) == ("a b.txt", "text/plain", b"abc")


async def test_browser_style_body_with_preamble_padding_and_epilogue() -> None:
    body = (
        b"This is a preamble.\r\n"
        + f"--{BOUNDARY} \t\r\n".encode()
        + b"content-disposition: form-data; name=Key\r\n\r\nv1\r\n"
        + f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="FILE"; '
        + 'filename="C:\\dir\\f\u00fcr m\u00e9.txt"\r\n'.encode()
        + b"\r\nhello\r\n"
        + f"--{BOUNDARY}--\r\nepilogue bytes\r\n".encode()
    )
    for sizes in CHUNKINGS:
        form, data = await parse(body, sizes, f'Multipart/Form-Data; Boundary="{BOUNDARY}"')
        assert form.fields == {"key": "v1"}
        assert form.file_name == "C:\\dir\\f\u00fcr m\u00e9.txt"
        assert form.file_content_type is None
        assert data == b"hello"


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('form-data; name="file"; filename="my file.txt"', "my file.txt"),
        ("form-data; name=file; filename=plain.txt", "plain.txt"),
        ('form-data; name="file"; filename="say \\"hi\\".txt"', 'say "hi".txt'),
        (
            'form-data; name="file"; filename="fallback.txt"; '
            "filename*=UTF-8''%E6%96%87%20%C3%A9.txt",
            "\u6587 \u00e9.txt",
        ),
        ("form-data; filename*=utf-8''na%C3%AFve.bin; name=file", "na\u00efve.bin"),
        ('form-data; name="file"; filename="ok.txt"; filename*=bogus\'\'%FF', "ok.txt"),
        ('form-data; name="file"; filename=""', ""),
        ('form-data; name="file"', ""),
    ],
)
async def test_filename_parameters(disposition: str, expected: str) -> None:
    body = (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        f"Content-Type: application/pdf\r\n\r\n%PDF\r\n--{BOUNDARY}--"
    ).encode()
    form, data = await parse(body, (4,))
    assert (form.file_name, form.file_content_type, data) == (expected, "application/pdf", b"%PDF")


async def test_empty_file_and_no_fields() -> None:
    form, data = await parse(encode([("file", ("e", b"", "text/plain"))]), (1,))
    assert (form.fields, form.file_name, data) == ({}, "e", b"")


async def test_repeated_field_keeps_last_value() -> None:
    form, _ = await parse(encode([("key", "a"), ("KEY", "b"), ("file", ("f", b"x"))]))
    assert form.fields == {"key": "b"}


async def test_field_at_limit_is_accepted() -> None:
    form, _ = await parse(encode([("key", "k" * FIELD_LIMIT), ("file", ("f", b"x"))]), (100,))
    assert form.fields["key"] == "k" * FIELD_LIMIT


async def test_file_is_streamed_before_the_body_ends() -> None:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    head = encode([("key", "k"), ("file", ("f", b"FIRST"))]).split(b"FIRST")[0]
    await queue.put({"type": "http.request", "body": head + b"FIRST", "more_body": True})
    form = await read_post_form(queue.get, CONTENT_TYPE)
    stream = form.file.__aiter__()
    assert await asyncio.wait_for(stream.__anext__(), 1) == b"FIRST"
    await queue.put({"type": "http.request", "body": b"SECOND\r", "more_body": True})
    assert await asyncio.wait_for(stream.__anext__(), 1) == b"SECOND"
    await queue.put({"type": "http.request", "body": f"\n--{BOUNDARY}--".encode()})
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(stream.__anext__(), 1)


async def test_large_file_streams_in_bounded_memory() -> None:
    chunk_size, chunks = 64 * 1024, 128  # 8 MiB
    head = encode([("key", "big"), ("file", ("big.bin", b"\0"))]).split(b"\0")[0]
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    expected = hashlib.sha256()

    def body() -> Iterator[bytes]:
        rng = random.Random(7)
        pending = head
        for _ in range(chunks):
            # Each message straddles the previous one's end so boundaries of messages and
            # of file chunks never line up.
            data = pending + rng.randbytes(chunk_size - len(pending))
            expected.update(data[len(pending) :])
            pending = b""
            yield data
        yield tail

    tracemalloc.start()
    try:
        form = await read_post_form(make_receive(body()), CONTENT_TYPE)
        got, size = hashlib.sha256(), 0
        async for piece in form.file:
            got.update(piece)
            size += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == chunks * chunk_size - len(head)
    assert got.digest() == expected.digest()
    assert peak < 1024 * 1024, f"peak {peak} bytes for an 8 MiB file"


# --- errors -----------------------------------------------------------------------


async def expect_error(code: str, body: bytes, **kwargs: Any) -> ServiceError:
    """The ServiceError from parsing `body`, whether read_post_form or the stream raises it."""
    for sizes in CHUNKINGS:
        with pytest.raises(ServiceError) as raised:
            await parse(body, sizes, **kwargs)
        assert raised.value.code == code, raised.value.message
    return raised.value


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/mixed; boundary=" + BOUNDARY,
        "",
    ],
)
async def test_bad_content_type(content_type: str) -> None:
    body = encode(OSS_FORM)
    await expect_error("MalformedPOSTRequest", body, content_type=content_type)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no multipart here",
        f"--{BOUNDARY}\r\nX-Other: 1\r\n\r\nv\r\n--{BOUNDARY}--".encode(),
        f"--{BOUNDARY}\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n".encode(),
        f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nv\r\n".encode(),
        f"--{BOUNDARY}\r\nno colon here\r\n\r\nv\r\n".encode(),
        f"--{BOUNDARY}\r\nX-Long: {'h' * 9000}\r\n\r\nv\r\n--{BOUNDARY}--".encode(),
        f"--{BOUNDARY}junk\r\nContent-Disposition: form-data; name=a\r\n\r\n".encode(),
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\n\r\n".encode()
        + f"\xff\r\n--{BOUNDARY}--".encode("latin-1"),
    ],
)
async def test_malformed_bodies(body: bytes) -> None:
    await expect_error("MalformedPOSTRequest", body)


async def test_body_ending_before_the_file_part() -> None:
    body = encode(OSS_FORM)
    cut = body[: body.index(b'name="file"')]
    await expect_error("MalformedPOSTRequest", cut)


async def test_field_too_long() -> None:
    body = encode([("key", "k" * (FIELD_LIMIT + 1)), ("file", ("f", b"x"))])
    error = await expect_error("FieldItemTooLong", body)
    assert "'key'" in error.message


async def test_field_too_long_is_caught_before_the_body_ends() -> None:
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=key\r\n\r\n".encode()
    receive = make_receive([head, b"v" * (FIELD_LIMIT + 200)], disconnect=True)
    with pytest.raises(ServiceError) as raised:
        await read_post_form(receive, CONTENT_TYPE)
    assert raised.value.code == "FieldItemTooLong"


async def test_fields_over_the_total_limit() -> None:
    body = encode([(f"f{i}", "v" * 1000) for i in range(10)] + [("file", ("f", b"x"))])
    with pytest.raises(ServiceError) as raised:
        await read_post_form(make_receive([body]), CONTENT_TYPE, max_fields_bytes=5000)
    assert raised.value.code == "MalformedPOSTRequest"
    form, data = await parse(body)
    assert len(form.fields) == 10 and data == b"x"


async def test_no_file_part() -> None:
    await expect_error("IncorrectNumberOfFilesInPOSTRequest", encode(OSS_FORM[:-1]))


async def test_second_file_part_fails_the_stream() -> None:
    body = encode([("key", "k"), ("file", ("a", b"one")), ("File", ("b", b"two"))])
    await expect_error("IncorrectNumberOfFilesInPOSTRequest", body)


async def test_field_after_the_file_fails_the_stream() -> None:
    body = encode([("key", "k"), ("file", ("a", b"one")), ("policy", "p")])
    error = await expect_error("MalformedPOSTRequest", body)
    assert "'policy'" in error.message and "last" in error.message


async def test_errors_after_the_file_come_after_its_bytes() -> None:
    body = encode([("file", ("a", b"one")), ("policy", "p")])
    form = await read_post_form(make_receive([body]), CONTENT_TYPE)
    stream = form.file.__aiter__()
    assert await stream.__anext__() == b"one"
    with pytest.raises(ServiceError):
        await stream.__anext__()


@pytest.mark.parametrize("drop", [3, 4, len(BOUNDARY) + 4, len(BOUNDARY) + 6, 100])
async def test_cut_short_body_fails_the_stream(drop: int) -> None:
    body = encode([("key", "k"), ("file", ("a", b"x" * 200))])
    await expect_error("MalformedPOSTRequest", body[:-drop])


async def test_client_disconnect_fails_the_stream() -> None:
    body = encode([("key", "k"), ("file", ("a", b"x" * 200))])
    receive = make_receive(chunked(body[:-50], (16,)), disconnect=True)
    form = await read_post_form(receive, CONTENT_TYPE)
    with pytest.raises(ServiceError) as raised:
        await drain(form.file)
    assert raised.value.code == "MalformedPOSTRequest"


async def test_boundary_prefix_followed_by_junk_inside_the_file() -> None:
    body = encode([("file", ("a", b"x"))]).replace(b"x", f"x\r\n--{BOUNDARY}Z".encode())
    await expect_error("MalformedPOSTRequest", body)


# --- property -----------------------------------------------------------------------

DELIMITER = f"\r\n--{BOUNDARY}".encode()
TRICKY = [b"\r", b"\n", b"\r\n", b"--", b"\r\n--", b"\r\n\r\n"] + [
    DELIMITER[:n] for n in range(1, len(DELIMITER))
]
names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.",
    min_size=1,
    max_size=20,
).filter(lambda name: name.lower() != "file")
values = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
        st.sampled_from([piece.decode() for piece in TRICKY]),
    ),
    max_size=6,
).map("".join)
file_bytes = st.lists(st.one_of(st.binary(max_size=200), st.sampled_from(TRICKY)), max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.lists(st.tuples(names, values), max_size=6),
    pieces=file_bytes,
    sizes=st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=8),
)
def test_any_form_round_trips(
    fields: list[tuple[str, str]], pieces: list[bytes], sizes: list[int]
) -> None:
    payload = b"".join(pieces)
    assume(DELIMITER not in payload)
    assume(all(DELIMITER not in value.encode() for _, value in fields))
    body = encode([*fields, ("file", ("name.bin", payload, "application/octet-stream"))])
    form, data = asyncio.run(parse(body, sizes))
    assert form.fields == {name.lower(): value for name, value in fields}
    assert form.file_name == "name.bin"
    assert data == payload
