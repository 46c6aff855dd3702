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
    receivers = params.get("Receiver", "") if phone == "anonymous" else phone
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

    async def deliver(self, delivery: Delivery) -> Outcome:
        """Hand one message to the gateway."""
        timeout = aiohttp.ClientTimeout(total=SMS_TIMEOUT_SECONDS)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.gateway_url, json=sms_request(delivery)) as response,
            ):
                ok = 200 <= response.status < 300
                return Outcome(ok, response.status, None if ok else f"HTTP {response.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}")
