"""Subscription endpoints (spec 12.1): parsing and the rules each kind follows. Pure."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tidings.errors import ServiceError
from tidings.services.validation import check_queue_name

HTTP, QUEUE, MAIL, SMS = "http", "queue", "mail", "sms"
FORMATS_BY_KIND = {
    HTTP: frozenset({"XML", "JSON", "SIMPLIFIED"}),
    QUEUE: frozenset({"XML", "JSON", "SIMPLIFIED"}),
    MAIL: frozenset({"SIMPLIFIED"}),
    SMS: frozenset({"XML", "JSON", "SIMPLIFIED"}),
}
DEFAULT_PUSH_PATH = "/notifications"
RESERVED_PATH_PREFIX = "/mns-reserved-"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed endpoint: `target` is the URL, queue name, mail address or phone."""

    kind: str
    target: str


def invalid_endpoint(endpoint: str, why: str) -> ServiceError:
    """`EndpointInvalid`, saying which forms are accepted."""
    return ServiceError(
        "EndpointInvalid",
        f"The endpoint {endpoint!r} is invalid: {why}. Use http(s)://host[:port][/path],"
        " acs:mns:{region}:{account}:queues/{name}, mail:directmail:{address} or"
        " sms:directsms:{phone|anonymous}.",
    )


# Every publish and every event parses its subscriptions' endpoints again: a few
# distinct strings, parsed once each (a refusal raises, and is not remembered).
@functools.lru_cache(maxsize=1024)
def parse_endpoint(endpoint: str) -> Endpoint:
    """Parse a subscription endpoint or refuse it with `EndpointInvalid`."""
    if endpoint.startswith(("http://", "https://")):
        parts = urlsplit(endpoint)
        if not parts.hostname:
            raise invalid_endpoint(endpoint, "the URL has no host")
        if not all(0x21 <= ord(c) <= 0x7E for c in endpoint):
            raise invalid_endpoint(
                endpoint, "spaces, control and non-ASCII characters must be percent-encoded"
            )
        if parts.username is not None or parts.password is not None:
            raise invalid_endpoint(
                endpoint, "credentials in the URL are not supported (pushes are signed instead)"
            )
        if parts.path.startswith(RESERVED_PATH_PREFIX):
            raise invalid_endpoint(endpoint, f"paths starting {RESERVED_PATH_PREFIX} are reserved")
        try:
            _ = parts.port
        except ValueError:
            raise invalid_endpoint(endpoint, "the port is not a number") from None
        return Endpoint(HTTP, endpoint)
    if endpoint.startswith("acs:mns:"):
        fields = endpoint.split(":", 4)
        resource = fields[4].lstrip("/") if len(fields) == 5 else ""
        if not resource.startswith("queues/"):
            raise invalid_endpoint(endpoint, "a queue endpoint ends in queues/{name}")
        name = resource[len("queues/") :]
        try:
            check_queue_name(name)
        except ServiceError as error:
            raise invalid_endpoint(endpoint, error.message) from None
        return Endpoint(QUEUE, name)
    if endpoint.startswith("mail:directmail:"):
        address = endpoint[len("mail:directmail:") :]
        if "@" not in address or any(c in address for c in " ,;<>"):
            raise invalid_endpoint(endpoint, "the mail address is not valid")
        return Endpoint(MAIL, address)
    if endpoint.startswith("sms:directsms:"):
        phone = endpoint[len("sms:directsms:") :]
        if not phone:
            raise invalid_endpoint(endpoint, "give a phone number or 'anonymous'")
        return Endpoint(SMS, phone)
    raise invalid_endpoint(endpoint, "unknown endpoint kind")


def push_url(url: str) -> str:
    """Where an HTTP endpoint receives pushes: its path, or /notifications when it has none."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return parts._replace(path=DEFAULT_PUSH_PATH).geturl()
    return url


def address_allowed(address: str, allowed: Iterable[str], denied: Iterable[str]) -> bool:
    """Whether an IP address may receive pushes under the administrator's network rules.

    Denied networks win; with allowed networks given, the address must be in one.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    # ::ffff:127.0.0.1 is 127.0.0.1: judge it by the IPv4 rules too.
    forms = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        forms.append(ip.ipv4_mapped)

    def within(networks: Iterable[str]) -> bool:
        return any(
            form in ipaddress.ip_network(net, strict=False) for net in networks for form in forms
        )

    if within(denied):
        return False
    allowed = list(allowed)
    return not allowed or within(allowed)
