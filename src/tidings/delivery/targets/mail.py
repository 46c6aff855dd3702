"""Mail endpoints: the message body sent through a configured SMTP relay."""

from __future__ import annotations

import asyncio
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from tidings.delivery.notification import attribute
from tidings.delivery.targets import Outcome
from tidings.models import Delivery
from tidings.services.endpoints import parse_endpoint

SMTP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class SmtpRelay:
    """Where mail goes out."""

    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    default_sender: str = "tidings@localhost"


def compose(delivery: Delivery, sender_fallback: str) -> EmailMessage:
    """The mail for a delivery: `DirectMail` gives sender, subject and HTML-ness."""
    params = json.loads(attribute(delivery, "DirectMail") or "{}")
    mail = EmailMessage()
    mail["From"] = params.get("AccountName") or sender_fallback
    mail["To"] = parse_endpoint(delivery.subscription.spec.endpoint).target
    mail["Subject"] = params.get("Subject", "")
    mail["Message-ID"] = f"<{delivery.message.message_id}@tidings>"
    subtype = "html" if params.get("IsHtml") in (1, "1", True) else "plain"
    mail.set_content(delivery.message.body, subtype=subtype)
    return mail


class MailTarget:
    """Sends one mail per delivery."""

    def __init__(self, relay: SmtpRelay) -> None:
        self.relay = relay

    async def close(self) -> None:
        """Nothing is pooled: each mail opens its own SMTP session."""

    def _send(self, mail: EmailMessage) -> None:
        with smtplib.SMTP(self.relay.host, self.relay.port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            if self.relay.starttls:
                smtp.starttls()
            if self.relay.username:
                smtp.login(self.relay.username, self.relay.password or "")
            smtp.send_message(mail)

    async def deliver(self, delivery: Delivery) -> Outcome:
        """Send the mail once."""
        try:
            mail = compose(delivery, self.relay.default_sender)
            await asyncio.to_thread(self._send, mail)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}")
        return Outcome(True, 250, None)
