"""HTTP(S) endpoints: the signed POST of spec 12.5, 5 s deadline, success on 2xx."""

from __future__ import annotations

import asyncio
import email.utils
import errno
import functools
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import aiohttp
import aiohttp.abc
import yarl
from aiohttp.abc import ResolveResult

from tidings.auth.push import PushSigner, push_headers
from tidings.delivery.notification import mns_headers, render_delivery
from tidings.delivery.targets import Outcome
from tidings.ids import request_id
from tidings.models import Delivery
from tidings.services.endpoints import address_allowed, push_url

PUSH_TIMEOUT_SECONDS = 5.0
# Bounds concurrent pushes per endpoint host so a slow receiver cannot take every
# connection; others keep their own budget.
PER_ENDPOINT_CONCURRENCY = 16
# Responses are read (to reuse the connection) but never kept.
MAX_RESPONSE_BYTES = 64 * 1024
SIGNING_THREADS = 2


class PolicyResolver(aiohttp.abc.AbstractResolver):
    """Resolves host names, keeping only addresses the administrator allows.

    Checked at connect time as well as at subscribe time, so a rule added later, or a
    name that later resolves elsewhere, still holds.
    """

    def __init__(self, allowed: tuple[str, ...], denied: tuple[str, ...]) -> None:
        self.allowed = allowed
        self.denied = denied
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Addresses of `host` that pushes may go to; OSError when there is none."""
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if address_allowed(r["host"], self.allowed, self.denied)]
        if not kept:
            # aiohttp reports a resolver failure by its strerror: give it the reason.
            raise OSError(errno.EACCES, f"pushes to {host} are not allowed by the administrator")
        return kept

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


class HttpTarget:
    """Pushes notifications to HTTP endpoints with a pooled client."""

    def __init__(
        self,
        signer: PushSigner,
        cert_url: Callable[[], str],
        account_id: str,
        timeout: float = PUSH_TIMEOUT_SECONDS,
        per_endpoint: int = PER_ENDPOINT_CONCURRENCY,
        allowed_networks: tuple[str, ...] = (),
        denied_networks: tuple[str, ...] = (),
    ) -> None:
        self.allowed_networks = allowed_networks
        self.denied_networks = denied_networks
        self.signer = signer
        self.cert_url = cert_url
        self.account_id = account_id
        self.timeout = timeout
        self.per_endpoint = per_endpoint
        self._session: aiohttp.ClientSession | None = None
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._signing = ThreadPoolExecutor(SIGNING_THREADS, thread_name_prefix="tidings-sign")

    def _refused_literal(self, host: str) -> str | None:
        # aiohttp never asks the resolver about IP literals, so they are checked here.
        if not (self.allowed_networks or self.denied_networks):
            return None
        try:
            allowed = address_allowed(host, self.allowed_networks, self.denied_networks)
        except ValueError:  # a name, not an address: the resolver judges it
            return None
        return None if allowed else f"pushes to {host} are not allowed by the administrator"

    async def close(self) -> None:
        """Close pooled connections and the signing threads."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._signing.shutdown(wait=False)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None
            if self.allowed_networks or self.denied_networks:
                resolver = PolicyResolver(self.allowed_networks, self.denied_networks)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=0, limit_per_host=self.per_endpoint, resolver=resolver
                ),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

    async def deliver(self, delivery: Delivery) -> Outcome:
        """POST the notification once."""
        url = push_url(delivery.subscription.spec.endpoint)
        parts = urlsplit(url)
        refusal = self._refused_literal(parts.hostname or "")
        if refusal is not None:
            return Outcome(False, None, refusal)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        body, content_type = render_delivery(delivery, self.account_id)
        # RSA signing takes ~0.3 ms and releases the GIL: keep it off the event loop.
        headers = await asyncio.get_running_loop().run_in_executor(
            self._signing,
            functools.partial(
                push_headers,
                body=body,
                content_type=content_type,
                cert_url=self.cert_url(),
                signer=self.signer,
                target=target,
                extra=mns_headers(delivery, self.account_id),
                date=email.utils.formatdate(usegmt=True),
                request_id=request_id(),
            ),
        )
        limit = self._limits.setdefault(parts.netloc, asyncio.Semaphore(self.per_endpoint))
        async with limit:
            try:
                async with self._client().post(
                    yarl.URL(url, encoded=True), data=body, headers=headers, allow_redirects=False
                ) as response:
                    await response.content.read(MAX_RESPONSE_BYTES)
                    ok = 200 <= response.status < 300
                    return Outcome(ok, response.status, None if ok else f"HTTP {response.status}")
            except TimeoutError:
                return Outcome(False, None, f"no answer within {self.timeout:g} s")
            except (aiohttp.ClientError, ValueError) as exc:
                # ValueError: a request aiohttp refuses to build; still the endpoint's fault.
                return Outcome(False, None, f"{type(exc).__name__}: {exc}")
