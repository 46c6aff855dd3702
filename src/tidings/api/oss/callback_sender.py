"""Making upload callbacks: the signed POST to each callback URL in turn (spec 10.3).

One pooled HTTP client, owned by the server and closed when it stops. Each URL gets one
attempt within the deadline (5 s by default) and no retry; the first that answers 200
with a JSON body wins. The administrator's network rules for push endpoints hold here
too: a callback URL is chosen by whoever uploads, so it must not reach what pushes may
not.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import yarl

from tidings.api.oss.callback import (
    CallbackSpec,
    callback_headers,
    response_failure,
    string_to_sign,
)
from tidings.auth.callback_key import CallbackSigner
from tidings.delivery.targets.http import PolicyResolver
from tidings.services.endpoints import address_allowed

log = logging.getLogger(__name__)

CALLBACK_TIMEOUT_SECONDS = 5.0
# The callback's answer becomes the client's response body, so it is held in memory.
MAX_RESPONSE_BYTES = 3 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """A successful callback's response body, or why every URL failed."""

    body: bytes | None
    failure: str | None = None


class _TooLarge(Exception):
    pass


class CallbackSender:
    """Signs and sends callback requests with a shared, lazily created HTTP client."""

    def __init__(
        self,
        signer: CallbackSigner,
        timeout: float = CALLBACK_TIMEOUT_SECONDS,
        allowed_networks: tuple[str, ...] = (),
        denied_networks: tuple[str, ...] = (),
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.signer = signer
        self.timeout = timeout
        self.allowed_networks = allowed_networks
        self.denied_networks = denied_networks
        self.max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession belongs to the running event loop.
        if self._session is None:
            resolver = None
            if self.allowed_networks or self.denied_networks:
                resolver = PolicyResolver(self.allowed_networks, self.denied_networks)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, resolver=resolver),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

    async def close(self) -> None:
        """Close pooled connections (when the server stops)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _refused_literal(self, host: str) -> str | None:
        # aiohttp never asks the resolver about IP literals, so they are checked here.
        if not (self.allowed_networks or self.denied_networks):
            return None
        try:
            allowed = address_allowed(host, self.allowed_networks, self.denied_networks)
        except ValueError:  # a name, not an address: the resolver judges it
            return None
        return None if allowed else f"callbacks to {host} are not allowed by the administrator."

    async def send(self, spec: CallbackSpec, body: bytes, public_key_url: str) -> CallbackResult:
        """POST `body` to the spec's URLs in order until one succeeds."""
        failures: list[str] = []
        for url in spec.urls:
            # Signed per URL: the signature covers the URL's path and query.
            signature = await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(self.signer.sign, string_to_sign(url, body))
            )
            headers = callback_headers(spec, signature, public_key_url)
            answer, failure = await self._attempt(url, spec, body, headers)
            if failure is None:
                return CallbackResult(answer)
            log.info("upload callback to %s failed: %s", url, failure)
            failures.append(failure if len(spec.urls) == 1 else f"{url}: {failure}")
        return CallbackResult(None, " ".join(failures))

    async def _attempt(
        self, url: str, spec: CallbackSpec, body: bytes, headers: dict[str, str]
    ) -> tuple[bytes, str | None]:
        parts = urlsplit(url)
        refusal = self._refused_literal(parts.hostname or "")
        if refusal is not None:
            return b"", f"Error status : -1. {refusal}"
        server_hostname = None
        if spec.sni and spec.host and parts.scheme.lower() == "https":
            # callbackSNI: name the callback host in the TLS handshake (and check the
            # certificate against it) rather than the URL's host.
            server_hostname = spec.host.rsplit(":", 1)[0]
        try:
            async with self._client().post(
                yarl.URL(url, encoded=True),
                data=body,
                headers=headers,
                allow_redirects=False,
                server_hostname=server_hostname,
            ) as response:
                answer = await self._read(response)
                return answer, response_failure(response.status, answer)
        except _TooLarge:
            return b"", f"The callback response body exceeds {self.max_response_bytes} bytes."
        except TimeoutError:
            return b"", f"Error status : -1. No answer within {self.timeout:g} s."
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            # ValueError: a request aiohttp refuses to build; still the URL's fault.
            return b"", f"Error status : -1. Cannot reach the callback server: {exc}"

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        if (response.content_length or 0) > self.max_response_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self.max_response_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)
