"""`tidings rule ...`: event-notification rules on the services the server uses.

Like `tidings queue`, the commands open the data dir directly, whether or not a server
runs on it. A rule is created by `RuleService.create` from the very parameters a
CreateEventRule request carries, so the CLI and the control plane validate alike and
refuse alike (same code, same message); a server on the same data dir applies a rule
created here within a second (its rule cache).

Match rules are written `--match 'prefix=photos/,suffix=.jpg'`: one option is one
AND-list, several options are OR-ed, as the API's MatchRules (outer list = OR, inner
list = AND). The same syntax is used to show rules, so what `rule list` prints can be
typed back in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tidings.api.control.rules import render_rule
from tidings.app import Tidings, running
from tidings.cli.bucket import say, time_text
from tidings.cli.common import data_dir_option, run_async, settings_from
from tidings.models import Subscription
from tidings.services.event_rules import (
    DEFAULT_EVENT_TYPE,
    DEFAULT_RESOURCE,
    DEFAULT_RULE_NAME,
    EventRule,
    MatchAtom,
)

DEFAULT_PRODUCT = "oss"
# Fields are split at a comma only where the next field starts, so a value may itself
# hold commas (object keys can): `prefix=a,b/` is the one prefix "a,b/".
_FIELD_START = re.compile(r",(?=\s*!?\s*(?:prefix|suffix|name)\s*=)", re.IGNORECASE)
_FIELD = re.compile(r"\s*(!?)\s*(prefix|suffix|name)\s*=(.*)", re.IGNORECASE | re.DOTALL)

MATCH_HELP = (
    "One AND-list of resource descriptions ('bucket/key' strings): comma-separated"
    " prefix=P, suffix=S, name=BUCKET/KEY; a prefix and a suffix form one description,"
    " '!' negates a field (e.g. 'prefix=photos/,suffix=.jpg,!prefix=photos/tmp/')."
    " Repeat the option to OR several lists."
)


def parse_match(text: str) -> list[dict[str, object]]:
    """One `--match` value as the AND-list of `EventMatchRule` objects it stands for.

    A prefix and a suffix join one atom (`{"Prefix":..,"Suffix":..}`, both must hold),
    as the console builds them, so they count as one of the five resource descriptions;
    a second prefix (or suffix) starts another atom. A full name, and every negated
    field, is an atom of its own: `!prefix=a,!suffix=b` excludes both, which is what the
    comma (AND) reads as. Only the shape is checked here; what the atoms mean (empty
    values, overlaps, limits) is the service's to judge.
    """
    atoms: list[dict[str, object]] = []
    open_atom: dict[str, object] | None = None  # the positive prefix/suffix atom being filled
    for raw in _FIELD_START.split(text):
        found = _FIELD.fullmatch(raw)
        if found is None:
            raise click.BadParameter(
                f"{raw.strip()!r} is not a field: use prefix=P, suffix=S or name=BUCKET/KEY"
                " (a leading '!' negates), e.g. 'prefix=photos/,suffix=.jpg'.",
                param_hint="'--match'",
            )
        negated, field, value = bool(found.group(1)), found.group(2).lower(), found.group(3)
        key = field.capitalize()
        if negated or field == "name":
            atom: dict[str, object] = {key: value}
            if negated:
                atom["MatchState"] = False
            atoms.append(atom)
            continue
        if open_atom is None or key in open_atom:
            open_atom = {}
            atoms.append(open_atom)
        open_atom[key] = value
    return atoms


def format_atom(atom: MatchAtom) -> str:
    """An atom in `--match` syntax (resource strings as they were sent, ARN included)."""
    sent = atom.to_api()
    if atom.name is not None:
        fields = [f"name={sent['Name']}"]
    else:
        fields = [f"prefix={sent['Prefix']}"] if sent["Prefix"] or not atom.suffix else []
        if atom.suffix:
            fields.append(f"suffix={atom.suffix}")
    if atom.match_state:
        return ",".join(fields)
    if len(fields) == 1:
        return "!" + fields[0]
    # NOT(prefix AND suffix) has no `--match` spelling (`!a,!b` means NOT a AND NOT b).
    return "!(" + ",".join(fields) + ")"


def format_match_rules(rule: EventRule) -> list[str]:
    """One line per OR-ed AND-list, each as `--match` would take it."""
    return [",".join(format_atom(atom) for atom in conj) for conj in rule.match_rules]


def format_endpoint(kind: str, value: str) -> str:
    """`queue:NAME`, `topic:NAME`, or the URL of an http endpoint."""
    return value if kind == "http" else f"{kind}:{value}"


def _endpoints(rule: EventRule) -> list[str]:
    return [format_endpoint(e.kind, e.value) for e in rule.endpoints]


def _auto_topic(rule: EventRule) -> bool:
    """Whether the rule's topic was created for it (and goes when it is deleted)."""
    return not any(e.kind == "topic" for e in rule.endpoints)


def _rules_table(rules: list[EventRule]) -> Table:
    table = Table()
    for column in ("Rule", "Product", "Event types", "Match rules", "Endpoints", "Topic"):
        table.add_column(column, overflow="fold")
    for rule in rules:
        # Text(): names and resource strings are data; rich markup in them stays literal.
        table.add_row(
            Text(rule.name),
            rule.product,
            Text("\n".join(rule.event_types)),
            Text("\n".join(format_match_rules(rule))),
            Text("\n".join(_endpoints(rule))),
            Text(rule.topic_name),
        )
    return table


async def _subscriptions(app: Tidings, rule: EventRule) -> list[Subscription] | None:
    """The subscriptions of the rule's topic, or None when the topic is gone."""
    topic = await app.topics.find_topic(rule.topic_name)
    if topic is None:
        return None
    return await app.topics.subscriptions_of(topic)


def _print_json(data: object) -> None:
    # click.echo, not rich: JSON for scripts must come out unwrapped and uncoloured.
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.group()
def rule() -> None:
    """Create, list, show and delete event-notification rules."""


@rule.command()
@data_dir_option
@click.argument("name", required=False)
@click.option(
    "--product",
    default=DEFAULT_PRODUCT,
    show_default=True,
    help="Product whose events the rule selects: oss, dm (directmail), vod, viapi (vision).",
)
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    help="Event type to select, e.g. PutObject, ObjectCreatedGroup (repeatable, or comma-"
    "separated).",
)
@click.option("--match", "matches", multiple=True, help=MATCH_HELP)
@click.option(
    "--match-json",
    help='MatchRules as the API takes them, e.g. \'[[{"Prefix":"photos/"}]]\' (instead of'
    " --match).",
)
@click.option("--queue", "queues", multiple=True, help="Deliver into this queue (repeatable).")
@click.option(
    "--http", "urls", multiple=True, help="Push to this http(s) URL (repeatable, mixable)."
)
@click.option("--topic", help="Publish to this existing topic (no other endpoint then).")
@click.option(
    "--default",
    "default_rule",
    is_flag=True,
    help=f"Create the default rule {DEFAULT_RULE_NAME}: everything no other rule matches.",
)
def create(
    data_dir: Path | None,
    config_file: Path | None,
    name: str | None,
    product: str,
    event_types: tuple[str, ...],
    matches: tuple[str, ...],
    match_json: str | None,
    queues: tuple[str, ...],
    urls: tuple[str, ...],
    topic: str | None,
    default_rule: bool,
) -> None:
    """Create rule NAME: events of --event-type on resources of --match go to the endpoints.

    Queue and http endpoints share a topic created for the rule
    (mns-en-topics-PRODUCT-NAME-DIGITS) with one subscription per endpoint, queues first,
    then URLs, each in the order given. Rules cannot be changed: delete and re-create.
    """
    if default_rule:
        if name not in (None, DEFAULT_RULE_NAME):
            raise click.UsageError(f"--default creates {DEFAULT_RULE_NAME}; drop NAME {name!r}.")
        if event_types or matches or match_json:
            raise click.UsageError(
                "--default takes no --event-type, --match or --match-json: the default rule"
                f" has the type {DEFAULT_EVENT_TYPE!r} and the resource {DEFAULT_RESOURCE!r}."
            )
        name = DEFAULT_RULE_NAME
        event_types = (DEFAULT_EVENT_TYPE,)
        matches = (f"name={DEFAULT_RESOURCE}",)
    if name is None:
        raise click.UsageError("Give the rule's NAME (or --default).")
    types = [part.strip() for value in event_types for part in value.split(",") if part.strip()]
    if not types:
        raise click.UsageError("Give at least one --event-type, e.g. --event-type PutObject.")
    if matches and match_json is not None:
        raise click.UsageError("Give --match options or --match-json, not both.")
    if not matches and match_json is None:
        raise click.UsageError("Give at least one --match (or --match-json).")
    endpoints = [{"EndpointType": "queue", "EndpointValue": value} for value in queues]
    endpoints += [{"EndpointType": "http", "EndpointValue": value} for value in urls]
    if topic is not None:
        endpoints.append({"EndpointType": "topic", "EndpointValue": topic})
    if not endpoints:
        raise click.UsageError("Give an endpoint: --queue, --http or --topic.")
    # The JSON-valued parameters of CreateEventRule, exactly as the control plane gets
    # them; --match-json goes through untouched so the service reports its own errors.
    params = {
        "ProductName": product,
        "RuleName": name,
        "EventTypes": json.dumps(types),
        "MatchRules": (
            match_json
            if match_json is not None
            else json.dumps([parse_match(value) for value in matches])
        ),
        "Endpoints": json.dumps(endpoints),
    }
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            created = await app.rules.create(params)
            subscriptions = await _subscriptions(app, created) or []
        how = "created for it" if _auto_topic(created) else "yours"
        say(f"rule {created.name} created: publishes to topic {created.topic_name} ({how})")
        if _auto_topic(created):
            for subscription in subscriptions:
                say(f"  subscription {subscription.name} -> {subscription.spec.endpoint}")

    run_async(go())


@rule.command("list")
@data_dir_option
@click.option("--product", help="Only the rules of this product.")
@click.option("--json", "as_json", is_flag=True, help="Print ListEventRules' PageData items.")
def list_rules(
    data_dir: Path | None, config_file: Path | None, product: str | None, as_json: bool
) -> None:
    """List the rules, in creation order."""
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            rules = await app.rules.list(product)
        if as_json:
            _print_json([render_rule(rule) for rule in rules])
        else:
            Console().print(_rules_table(rules))

    run_async(go())


@rule.command()
@data_dir_option
@click.argument("name")
@click.option("--product", default=DEFAULT_PRODUCT, show_default=True, help="The rule's product.")
@click.option("--json", "as_json", is_flag=True, help="Print GetEventRule's Data.")
def show(
    data_dir: Path | None, config_file: Path | None, name: str, product: str, as_json: bool
) -> None:
    """Show rule NAME with its topic's subscriptions."""
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            found = await app.rules.get(product, name)
            subscriptions = await _subscriptions(app, found)
        if as_json:
            _print_json(render_rule(found))
            return
        whose = "created for the rule" if _auto_topic(found) else "yours"
        matched = format_match_rules(found)
        lines = [
            ("rule", f"{found.name} ({found.product})"),
            ("created", f"{time_text(found.created_ms)} UTC"),
            ("event types", ", ".join(found.event_types)),
            # One OR-ed AND-list per line, the first one labelled.
            *(("match" if i == 0 else "", line) for i, line in enumerate(matched)),
            ("endpoints", ", ".join(_endpoints(found))),
            ("topic", f"{found.topic_name} ({whose})"),
        ]
        for label, value in lines:
            say(f"{label:<12} {value}")
        if subscriptions is None:
            # A deleted user topic: the cloud silently loses such events, and so do we.
            say(f"the topic {found.topic_name} does not exist: this rule's events are lost")
        elif not subscriptions:
            say("the topic has no subscriptions: this rule's events reach nobody")
        for subscription in subscriptions or []:
            # Lines, not a table: the long generated names must stay whole to be copied.
            spec = subscription.spec
            say(
                f"{'subscription':<12} {subscription.name} -> {spec.endpoint}"
                f" ({spec.notify_content_format}, {spec.notify_strategy})"
            )

    run_async(go())


@rule.command()
@data_dir_option
@click.argument("name")
@click.option("--product", default=DEFAULT_PRODUCT, show_default=True, help="The rule's product.")
def delete(data_dir: Path | None, config_file: Path | None, name: str, product: str) -> None:
    """Delete rule NAME (with the topic and subscriptions created for it)."""
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            found = await app.rules.get(product, name)
            await app.rules.delete(product, name)
        gone = f", with its topic {found.topic_name}" if _auto_topic(found) else ""
        say(f"rule {found.name} deleted{gone}")

    run_async(go())
