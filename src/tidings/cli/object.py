"""`tidings object ...`: put, get, list and remove objects on the services the server uses.

Like `tidings queue`, the commands open the data dir directly, whether or not a server
runs on it, and act as its administrator (no AccessKey, no ACL checks). Bodies stream
in CHUNK_SIZE pieces in both directions, so memory stays at a few chunks whatever the
size: an upload goes through the same blob store path as a PutObject (temp file, fsync,
rename, then the metadata commit), and a download is written to a temp file that
replaces FILE only once every byte arrived and the CRC-64 matched.

Objects are named `BUCKET/KEY` (an `oss://` prefix is accepted too). Keys may hold any
UTF-8, so whatever the CLI prints of a key has its control characters escaped.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tidings.app import Tidings, running
from tidings.cli.bucket import say, time_text
from tidings.cli.common import data_dir_option, run_async, settings_from
from tidings.cli.transfer import (
    Source,
    download,
    open_sink,
    open_source,
    progress_option,
    transfer_progress,
    upload,
)
from tidings.object_models import Bucket, ObjectVersion
from tidings.services.conditions import Conditions
from tidings.services.multipart import MIN_PART_SIZE
from tidings.services.object_rules import OBJECT_ACLS, STORAGE_CLASSES, stored_headers, user_meta
from tidings.services.objects import ObjectAttrs

# Objects listed per store query while filling --limit.
LIST_PAGE = 1000
DEFAULT_LIST_LIMIT = 1000
# HTTP header names (RFC 9110 token characters): user metadata travels as headers.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SIZE = re.compile(r"(\d+)\s*([KMG]?)(?:i?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


# -- names and text ----------------------------------------------------------------------


def printable(text: str) -> str:
    """`text` with non-printable characters escaped, safe to show on a terminal.

    Keys may contain newlines or escape sequences; printed raw they could forge output
    lines or drive the terminal.
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def split_location(value: str) -> tuple[str, str]:
    """(bucket, key) of `BUCKET/KEY` or `oss://BUCKET/KEY`; the key may be empty."""
    bucket, _, key = value.removeprefix("oss://").partition("/")
    if not bucket:
        raise click.BadParameter(f"{value!r} names no bucket: use BUCKET/KEY")
    return bucket, key


def object_location(value: str) -> tuple[str, str]:
    """(bucket, key) of `BUCKET/KEY` where the key is required."""
    bucket, key = split_location(value)
    if not key:
        raise click.BadParameter(f"{value!r} names no object: use BUCKET/KEY")
    return bucket, key


def _label(bucket: str, key: str) -> str:
    return printable(f"{bucket}/{key}")


def _local_name(key: str) -> str:
    """The file name a download of `key` gets by default: its last path segment."""
    name = key.rsplit("/", 1)[-1]
    if name in ("", ".", "..") or "\0" in name:
        raise click.BadParameter(
            f"the key {printable(key)!r} gives no usable file name: name the FILE to write"
        )
    return name


def _parse_size(value: str) -> int:
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not a size (e.g. 8388608, 512K, 64M, 1G)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def _header_text(value: str, what: str) -> str:
    # Header values are sent as Latin-1 by the server and read as such by SDKs; printable
    # ASCII is the subset that reads back the same everywhere.
    if not all(" " <= c <= "~" for c in value):
        raise click.BadParameter(f"{what} must be printable ASCII (it travels in HTTP headers)")
    return value


def _attrs(
    key: str,
    content_type: str | None,
    meta: tuple[str, ...],
    acl: str,
    storage_class: str | None,
) -> ObjectAttrs:
    """The attributes of a new object, built by the same rules as for a PutObject."""
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["content-type"] = _header_text(content_type, "--content-type")
    for item in meta:
        name, sep, value = item.partition("=")
        if not sep or _HEADER_NAME.fullmatch(name) is None:
            raise click.BadParameter(f"{item!r}: use NAME=VALUE, NAME of letters, digits, '-'")
        headers[f"x-oss-meta-{name.lower()}"] = _header_text(value, f"--meta {name}")
    return ObjectAttrs(
        headers=stored_headers(headers, key),  # guesses Content-Type from the key if unset
        meta=user_meta(headers),
        acl=acl,
        storage_class=storage_class,
    )


# -- listing -----------------------------------------------------------------------------


async def list_page(
    app: Tidings, bucket: Bucket, prefix: str, delimiter: str, marker: str, limit: int
) -> tuple[list[ObjectVersion], list[str], str | None]:
    """Up to `limit` objects and common prefixes after `marker`, and the next marker."""
    objects: list[ObjectVersion] = []
    prefixes: list[str] = []
    while True:
        want = min(LIST_PAGE, limit - len(objects) - len(prefixes))
        page = await app.objects.store.list_objects(bucket.id, prefix, delimiter, marker, want)
        objects += page.objects
        prefixes += page.prefixes
        if not page.truncated:
            return objects, prefixes, None
        marker = page.next_marker
        if len(objects) + len(prefixes) >= limit:
            return objects, prefixes, marker


def _objects_table(objects: list[ObjectVersion], prefixes: list[str]) -> Table:
    table = Table()
    # Only the key may wrap: the other cells are short, and a folded ETag or time is
    # hard to read and to copy.
    table.add_column("Key", overflow="fold", ratio=1)
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Modified (UTC)", no_wrap=True)
    table.add_column("ETag", no_wrap=True)
    table.add_column("Class", no_wrap=True)
    rows: list[tuple[str, list[str | Text]]] = [
        (p, [Text(printable(p), style="bold"), "PRE", "", "", ""]) for p in prefixes
    ]
    rows += [
        (
            v.key,
            [
                Text(printable(v.key)),
                str(v.size),
                time_text(v.last_modified_ms),
                v.etag,
                v.storage_class,
            ],
        )
        for v in objects
    ]
    # Keys and prefixes interleaved in the store's order (UTF-8 bytes = code points).
    for _, cells in sorted(rows, key=lambda row: row[0]):
        table.add_row(*cells)
    return table


# -- commands ----------------------------------------------------------------------------


@click.group("object")
def object_group() -> None:
    """Put, get, list and remove objects."""


@object_group.command()
@data_dir_option
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("dest")
@click.option("--content-type", help="Content-Type (default: guessed from the key).")
@click.option("--meta", multiple=True, metavar="NAME=VALUE", help="User metadata (repeatable).")
@click.option(
    "--acl",
    type=click.Choice(OBJECT_ACLS),
    default="default",
    help="Object ACL (default: follow the bucket's).",
)
@click.option("--storage-class", type=click.Choice(STORAGE_CLASSES), help="Default: the bucket's.")
@click.option(
    "--part-size",
    metavar="SIZE",
    help=f"Upload as multipart with parts of this size (at least {MIN_PART_SIZE // 1024}K),"
    " e.g. 64M. Files over the 5 GiB PutObject limit always go as multipart.",
)
@click.option("--forbid-overwrite", is_flag=True, help="Fail if the key already exists.")
@progress_option
def put(
    data_dir: Path | None,
    config_file: Path | None,
    file: str,
    dest: str,
    content_type: str | None,
    meta: tuple[str, ...],
    acl: str,
    storage_class: str | None,
    part_size: str | None,
    forbid_overwrite: bool,
    progress: bool | None,
) -> None:
    """Upload FILE (- for stdin) as DEST: BUCKET/KEY, or BUCKET/PREFIX/ to keep its name."""
    bucket_name, key = split_location(dest)
    if not key or key.endswith("/"):
        if file == "-":
            raise click.BadParameter(
                "stdin has no name: give the full BUCKET/KEY", param_hint="DEST"
            )
        key += Path(file).name
    parts = _parse_size(part_size) if part_size is not None else None
    if parts is not None and parts < MIN_PART_SIZE:
        raise click.BadParameter(f"at least {MIN_PART_SIZE} bytes", param_hint="--part-size")
    attrs = _attrs(key, content_type, meta, acl, storage_class)
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            bucket = await app.buckets.get(bucket_name)
            with open_source(file) as (handle, size):
                description = f"upload {_label(bucket_name, key)}"
                with transfer_progress(description, size, progress) as advance:
                    source = Source(handle, size, advance)
                    outcome = await upload(app, bucket, key, source, attrs, parts, forbid_overwrite)
        v = outcome.version
        version = f", version {v.version_id}" if bucket.versioning else ""
        name = "stdin" if file == "-" else printable(file)
        say(
            f"uploaded {name} to {_label(bucket_name, key)}: {v.size} bytes,"
            f" ETag {v.etag}, CRC-64 {v.crc64}{version}"
        )

    run_async(go())


@object_group.command()
@data_dir_option
@click.argument("source")
@click.argument("file", required=False)
@click.option("--version-id", help="Read this version rather than the current one.")
@progress_option
def get(
    data_dir: Path | None,
    config_file: Path | None,
    source: str,
    file: str | None,
    version_id: str | None,
    progress: bool | None,
) -> None:
    """Download SOURCE (BUCKET/KEY) to FILE, a directory, or - for stdout.

    Without FILE the object goes to a file named after the key's last segment.
    """
    bucket_name, key = object_location(source)
    dest = file if file is not None else _local_name(key)
    if dest != "-" and Path(dest).is_dir():
        dest = str(Path(dest) / _local_name(key))
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            bucket = await app.buckets.get(bucket_name)
            version = await app.objects.open(bucket, key, version_id, Conditions())
            description = f"download {_label(bucket_name, key)}"
            with (
                open_sink(dest) as out,
                transfer_progress(description, version.size, progress) as advance,
            ):
                await download(app, version, out, advance)
        where = "stdout" if dest == "-" else printable(dest)
        # With the object on stdout, the report goes to stderr.
        report = f"downloaded {_label(bucket_name, key)} to {where}: {version.size} bytes"
        say(report, err=dest == "-")

    try:
        run_async(go())
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): stop quietly, as cat does, and keep
        # the interpreter's final flush from failing on the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


@object_group.command("list")
@data_dir_option
@click.argument("location")
@click.option("--delimiter", default="", help="Group keys by this (e.g. /) into prefixes.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIST_LIMIT,
    show_default=True,
    help="Most rows (objects and prefixes) to show.",
)
@click.option("--marker", default="", help="Start after this key (to continue a listing).")
def list_objects(
    data_dir: Path | None,
    config_file: Path | None,
    location: str,
    delimiter: str,
    limit: int,
    marker: str,
) -> None:
    """List the objects of LOCATION: BUCKET or BUCKET/PREFIX."""
    bucket_name, prefix = split_location(location)
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            bucket = await app.buckets.get(bucket_name)
            objects, prefixes, more = await list_page(app, bucket, prefix, delimiter, marker, limit)
        Console().print(_objects_table(objects, prefixes))
        summary = (
            f"{len(objects)} object(s), {len(prefixes)} prefix(es),"
            f" {sum(v.size for v in objects)} bytes"
        )
        if more is not None:
            summary += f"; more follow: --marker {shlex.quote(printable(more))}"
        say(summary)

    run_async(go())


@object_group.command()
@data_dir_option
@click.argument("target")
@click.option(
    "--version-id", help="Delete this version (or delete marker) for good, not the current one."
)
def rm(
    data_dir: Path | None, config_file: Path | None, target: str, version_id: str | None
) -> None:
    """Delete TARGET (BUCKET/KEY). In a versioned bucket this adds a delete marker."""
    bucket_name, key = object_location(target)
    settings = settings_from(data_dir, config_file)

    async def go() -> None:
        async with running(settings) as app:
            bucket = await app.buckets.get(bucket_name)
            outcome = await app.objects.delete(bucket, key, version_id)
        label = _label(bucket_name, key)
        asked = f" version {printable(version_id)}" if version_id else ""
        if outcome.marker is not None and outcome.marker_created:
            text = f"{label}: delete marker {outcome.marker.version_id} created"
        elif outcome.marker is not None:
            text = f"{label}: delete marker {outcome.marker.version_id} removed"
        elif outcome.removed is not None:
            text = f"deleted {label}{asked}"
        else:
            text = f"{label}{asked} did not exist"
        say(text)

    run_async(go())
