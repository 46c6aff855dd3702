"""What OSS handlers work with: the services, and the reply they build."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tidings.api.http import Send
from tidings.auth.keys import KeyRing
from tidings.clock import Clock
from tidings.services.buckets import BucketService
from tidings.services.multipart import MultipartService
from tidings.services.objects import ObjectService


@dataclass(frozen=True, slots=True)
class OssContext:
    """The services and settings behind the OSS listener."""

    buckets: BucketService
    objects: ObjectService
    multipart: MultipartService
    keys: KeyRing
    clock: Clock
    region: str
    # Host suffixes under which `<bucket>.<domain>` selects virtual-hosted addressing.
    domains: tuple[str, ...] = ("localhost",)
    # Send the whole object's CRC-64 on 206 responses (spec 5.3 rule 4: faithful) or not.
    crc_on_ranges: bool = True

    @property
    def location(self) -> str:
        """The bucket location string, `oss-<region>`."""
        return f"oss-{self.region}"


@dataclass(slots=True)
class Reply:
    """A response: a complete body, or a stream of `length` bytes."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    length: int | None = None

    async def send(self, send: Send, head: bool) -> None:
        """Send the reply; a HEAD announces the length a GET would send, with no body."""
        length = self.length if self.length is not None else len(self.body)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        if self.status != 304:
            headers.append((b"content-length", str(length).encode("ascii")))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        if head or self.status == 304:
            await send({"type": "http.response.body", "body": b""})
            return
        if self.stream is None:
            await send({"type": "http.response.body", "body": self.body})
            return
        async for chunk in self.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
