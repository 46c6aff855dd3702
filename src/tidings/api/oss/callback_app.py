"""The OSS listener with upload callbacks: it serves the callback public key and makes
the callbacks that handlers leave in a `CallbackReply` (spec 10).

The callback is made after the handler returned, so the object and its event are
already committed whatever the callback server does; its answer only decides what the
uploading client reads (200 with the answer, or 203 CallbackFailed).
"""

from __future__ import annotations

import logging

from tidings.api.http import Receive, Scope, Send
from tidings.api.oss.app import OssApp
from tidings.api.oss.call import OssCall, address
from tidings.api.oss.callback import (
    PUBLIC_KEY_PATH,
    RESERVED_SEGMENT,
    CallbackReply,
    PendingCallback,
    failed,
    public_key_url,
    succeeded,
)
from tidings.api.oss.callback_sender import CallbackSender
from tidings.api.oss.context import OssContext, Reply

log = logging.getLogger(__name__)

PEM_TYPE = "application/x-pem-file"


class OssCallbackApp(OssApp):
    """`OssApp` plus the callback public key and the callbacks themselves."""

    def __init__(
        self, context: OssContext, sender: CallbackSender, public_url: str | None = None
    ) -> None:
        super().__init__(context)
        self.sender = sender
        # The OSS listener's URL as application servers reach it, when configured.
        self.public_url = public_url

    def _wants_key(self, scope: Scope) -> bool:
        if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
            return False
        raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8")
        if raw != PUBLIC_KEY_PATH.encode("ascii"):
            return False
        host = next(
            (v.decode("latin-1") for n, v in scope.get("headers", []) if n.lower() == b"host"),
            "",
        )
        # Under a virtual-hosted bucket's host the same path is one of its objects.
        bucket, _ = address(PUBLIC_KEY_PATH, host, self.context.domains)
        return bucket == RESERVED_SEGMENT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._wants_key(scope):
            reply = Reply(200, [("Content-Type", PEM_TYPE)], self.sender.signer.public_key_pem)
            await reply.send(send, scope["method"] == "HEAD")
            return
        await super().__call__(scope, receive, send)

    async def _dispatch(self, call: OssCall) -> Reply:
        reply = await super()._dispatch(call)
        if isinstance(reply, CallbackReply) and reply.pending is not None:
            return await self._call_back(reply, reply.pending)
        return reply

    async def _call_back(self, reply: Reply, pending: PendingCallback) -> Reply:
        key_url = public_key_url(pending.host, self.context.domains, self.public_url)
        try:
            result = await self.sender.send(pending.spec, pending.body, key_url)
        except Exception:
            # The object is stored: whatever went wrong, the upload did not fail.
            log.exception("upload callback of request %s failed", pending.request_id)
            return failed(reply, pending, "The callback could not be made: internal error.")
        if result.body is None:
            return failed(reply, pending, result.failure or "The callback failed.")
        return succeeded(reply, result.body)
