"""SMS endpoints: a JSON POST to a configured HTTP gateway, one per message."""

from __future__ import annotations

import json

import aiohttp

from tidings.delivery.notification import attribute
from tidings.delivery.targets import Outcome
from tidings.models import Delivery
from tidings.services.endpoints import parse_endpoint

SMS_TIMEOUT_SECONDS = 5.0


def sms_request(delivery: Delivery) -> dict[str, object]:
    """The gateway request: receivers and template from `DirectSMS` (spec 10.7)."""
    params = json.loads(attribute(delivery, "DirectSMS") or "{}")
    phone = parse_endpoint(delivery.subscription.spec.endpoint).target
    receivers = phone
    if phone == "anonymous":
        receivers = params.get("Receiver", "")
        if not receivers and params.get("Type") == "multiContent":
            # multiContent names each receiver as a key of its parameters (spec 10.7).
            try:
                per_phone = json.loads(params.get("SmsParams") or "{}")
            except ValueError:
                per_phone = {}
            if isinstance(per_phone, dict):
                receivers = ",".join(per_phone)
    return {
        "PhoneNumbers": receivers,
        "SignName": params.get("FreeSignName", ""),
        "TemplateCode": params.get("TemplateCode", ""),
        "Type": params.get("Type", "singleContent"),
        "TemplateParam": params.get("SmsParams", ""),
        "MessageId": delivery.message.message_id,
        "Body": delivery.message.body,
    }


class SmsTarget:
    """Posts SMS requests to the gateway."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the pooled connection to the gateway."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, delivery: Delivery) -> Outcome:
        """Hand one message to the gateway."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=SMS_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.post(self.gateway_url, json=sms_request(delivery)) as response:
                ok = 200 <= response.status < 300
                return Outcome(ok, response.status, None if ok else f"HTTP {response.status}")
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}")
