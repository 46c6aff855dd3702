"""`tidings emit ...`: publish DirectMail, VOD or Vision AI events as those services would.

    tidings emit dm Deliver:SendSuccessfully --field rcpt=bob@example.com
    tidings emit vod FileUploadComplete --field VideoId=abc --field Size=1024
    tidings emit vision SuperResolveVideo --field status=PROCESS_FAILED
    tidings emit vod-callback set --http https://hooks.example.com/vod --auth-key Vod2025Key

Events go through the product's event rules (and, for VOD, the application's callback)
exactly as the server would send them; the command works on the data dir whether or not
a server runs on it. Messages written while the server is stopped are delivered by it
once it starts. The exit status is 1 when a rule's topic or the callback did not take
the event.
"""

from __future__ import annotations

import textwrap
from typing import Any

import click

from tidings.app import running
from tidings.cli.common import data_dir_option, run_async, settings_from
from tidings.clock import ScaledClock
from tidings.events.vod import DEFAULT_APP_ID
from tidings.services.emit import EmitReport, event_types, render_body
from tidings.services.vod_callbacks import CallbackResult, callback_to_api
from tidings.store.sqlite_vod_callbacks import VodCallback


@click.group("emit")
def emit() -> None:
    """Emit DirectMail, VOD and Vision AI events, to test their consumers locally."""


def parse_fields(pairs: tuple[str, ...]) -> dict[str, object]:
    """`NAME=VALUE` options as a field mapping (values stay strings; each format types them)."""
    fields: dict[str, object] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--field")
        if name in fields:
            raise click.BadParameter(f"{name} is given twice", param_hint="--field")
        fields[name] = value
    return fields


def _callback_line(result: CallbackResult) -> str:
    where = f"callback {result.kind} {result.target}"
    if result.skipped:
        return f"{where}: skipped ({result.error})"
    tries = f"{result.attempts} attempt{'s' if result.attempts != 1 else ''}"
    if result.ok:
        detail = (
            f"HTTP {result.status}" if result.kind == "HTTP" else f"message {result.message_id}"
        )
        return f"{where}: ok, {detail} after {tries}"
    return f"{where}: FAILED after {tries}: {result.error}"


def print_report(report: EmitReport) -> None:
    """The body, then one line per rule and the callback."""
    click.echo(f"body {report.body}")
    for publication in report.publications:
        where = f"rule {publication.rule_name} -> topic {publication.topic_name}"
        if publication.error is None:
            click.echo(f"{where}: message {publication.message_id}")
        else:
            click.echo(f"{where}: LOST ({publication.error})")
    if report.callback is not None:
        click.echo(_callback_line(report.callback))
    if not report.publications and report.callback is None:
        click.echo(
            f"nothing was sent: no {report.product} rule selects {report.event_type}"
            + (" and no VOD callback is set" if report.product == "vod" else ""),
            err=True,
        )


def _product_command(product: str, title: str) -> click.Command:
    """`tidings emit <product> EVENT_TYPE --field NAME=VALUE ...`."""
    types = "\n".join(textwrap.wrap(", ".join(event_types(product)), 76))
    any_name = " (or any API operation name)" if product == "viapi" else ""
    help_text = (
        f"Emit {title} event of EVENT_TYPE through the {product} event rules"
        + (" and the application's VOD callback" if product == "vod" else "")
        + f".\n\n\b\nEvent types{any_name}:\n{textwrap.indent(types, '  ')}\n\n"
        "Fields not given get realistic defaults (fresh ids, now); see docs/producers.md."
    )

    @click.command(product, help=help_text)
    @click.argument("event_type")
    @click.option(
        "--field",
        "-f",
        "field_pairs",
        multiple=True,
        metavar="NAME=VALUE",
        help="A field of the event body, by its wire name (repeatable; JSON for objects).",
    )
    @click.option("--dry-run", is_flag=True, help="Print the body only; send nothing.")
    @data_dir_option
    def command(
        event_type: str, field_pairs: tuple[str, ...], dry_run: bool, **common: Any
    ) -> None:
        fields = parse_fields(field_pairs)
        app_id = common.pop("app_id", None)
        settings = settings_from(common.pop("data_dir"), common.pop("config_file"))

        async def run() -> EmitReport | str:
            # Rendered first without the store: bad input and dry runs leave the data
            # dir untouched.
            now_ms = ScaledClock().now_ms()
            region, account = settings.region, settings.account_id
            body = render_body(
                product, event_type, fields, now_ms=now_ms, region=region, account_id=account
            )
            if dry_run:
                return body
            async with running(settings) as app:
                return await app.emitter.deliver(product, event_type, fields, app_id)

        outcome = run_async(run())
        if isinstance(outcome, str):
            click.echo(outcome)
            return
        print_report(outcome)
        if outcome.failed:
            raise SystemExit(1)

    if product == "vod":
        command = click.option(
            "--app-id", help=f"The application whose callback gets the event ({DEFAULT_APP_ID})."
        )(command)
    return command


emit.add_command(_product_command("dm", "a DirectMail delivery"))
emit.add_command(_product_command("vod", "an ApsaraVideo VOD"))
emit.add_command(_product_command("viapi", "a Vision AI job"), "vision")


@emit.group("vod-callback")
def vod_callback() -> None:
    """Configure VOD's own callback (SetMessageCallback): an HTTP URL or an SMQ queue."""


def _show(callback: VodCallback) -> None:
    for name, value in callback_to_api(callback).items():
        if value:
            click.echo(f"{name}: {value}")


@vod_callback.command("set")
@click.option("--http", "url", metavar="URL", help="POST events to this URL.")
@click.option("--auth-key", help="Sign HTTP callbacks with this key (X-VOD-SIGNATURE).")
@click.option("--queue", metavar="NAME", help="Send events to this queue instead.")
@click.option("--mns-endpoint", help="The SMQ endpoint to echo back (the queue is local).")
@click.option(
    "--event-types",
    "event_type_list",
    default="ALL",
    show_default=True,
    help="Comma-separated event types, ALL, or AIComplete (every AI event).",
)
@click.option("--app-id", default=DEFAULT_APP_ID, show_default=True, help="The VOD application.")
@data_dir_option
def set_callback(
    url: str | None,
    auth_key: str | None,
    queue: str | None,
    mns_endpoint: str | None,
    event_type_list: str,
    app_id: str,
    **common: Any,
) -> None:
    """Set the application's callback: --http URL [--auth-key K] or --queue NAME."""
    if (url is None) == (queue is None):
        raise click.UsageError("give either --http URL or --queue NAME")
    params: dict[str, object] = {"AppId": app_id, "EventTypeList": event_type_list}
    if url is not None:
        params.update(CallbackType="HTTP", CallbackURL=url)
        if auth_key:
            params.update(AuthSwitch="on", AuthKey=auth_key)
    else:
        params.update(CallbackType="MNS", MnsQueueName=queue, MnsEndpoint=mns_endpoint or "")
        if auth_key:
            raise click.UsageError("--auth-key signs HTTP callbacks; a queue takes none")
    settings = settings_from(common["data_dir"], common["config_file"])

    async def run() -> VodCallback:
        async with running(settings) as app:
            return await app.vod_callbacks.set(params)

    _show(run_async(run()))


@vod_callback.command("show")
@click.option("--app-id", help="One application (default: every one).")
@data_dir_option
def show_callback(app_id: str | None, **common: Any) -> None:
    """Show the callbacks set."""
    settings = settings_from(common["data_dir"], common["config_file"])

    async def run() -> list[VodCallback]:
        async with running(settings) as app:
            if app_id is not None:
                return [await app.vod_callbacks.get(app_id)]
            return await app.vod_callbacks.list()

    found = run_async(run())
    if not found:
        click.echo("no VOD callback is set")
    for number, callback in enumerate(found):
        if number:
            click.echo()
        _show(callback)


@vod_callback.command("delete")
@click.option("--app-id", default=DEFAULT_APP_ID, show_default=True, help="The VOD application.")
@data_dir_option
def delete_callback(app_id: str, **common: Any) -> None:
    """Remove the application's callback."""
    settings = settings_from(common["data_dir"], common["config_file"])

    async def run() -> None:
        async with running(settings) as app:
            await app.vod_callbacks.delete(app_id)

    run_async(run())
    click.echo(f"VOD callback of {app_id} deleted")
