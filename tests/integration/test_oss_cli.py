"""`tidings bucket ...` and `tidings object ...` on a real data dir, through the services.

The last test proves the CLI and the server share one store: what the CLI writes a
server started on the same data dir serves to the official `oss2` SDK (CRC checks on),
and what `oss2` writes through the server the CLI reads back byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import oss2
import pytest
from click.testing import CliRunner, Result

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess
from tidings.app import running
from tidings.cli import cli
from tidings.config import load_settings

MIB = 1024 * 1024


def run(data: Path, *args: str, ok: bool = True, stdin: bytes | None = None) -> Result:
    """Invoke the CLI in-process; `ok` says whether it must succeed or fail."""
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(cli, [*args, "--data-dir", str(data)], input=stdin)
    assert (result.exit_code == 0) == ok, (result.exit_code, result.output, result.exception)
    if ok:
        assert result.exception is None, result.exception
    return result


def reported_etag(output: str) -> str:
    """The ETag an `object put` reports."""
    match = re.search(r"ETag ([0-9A-F-]+)", output)
    assert match is not None, output
    return match.group(1)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_bucket_create_list_delete(data: Path) -> None:
    assert (
        "bucket pics created"
        in run(data, "bucket", "create", "pics", "--acl", "public-read").output
    )
    # Re-running a create keeps the bucket's ACL unless --acl says otherwise.
    assert "already exists" in run(data, "bucket", "create", "pics").output
    run(data, "bucket", "create", "cold", "--storage-class", "IA")
    listed = run(data, "bucket", "list").output
    assert re.search(r"pics .* Standard .* public-read ", listed), listed
    assert re.search(r"cold .* IA .* private ", listed), listed
    assert "cold" not in run(data, "bucket", "list", "--prefix", "p").output

    # A different storage class for an existing bucket is the service's conflict.
    conflict = run(data, "bucket", "create", "pics", "--storage-class", "IA", ok=False)
    assert "error: BucketAlreadyExists:" in conflict.output
    assert "InvalidBucketName" in run(data, "bucket", "create", "Bad_Name", ok=False).output
    assert (
        "Invalid value for '--acl'"
        in run(data, "bucket", "create", "x1x", "--acl", "open", ok=False).output
    )

    (data.parent / "f.txt").write_bytes(b"x")
    run(data, "object", "put", str(data.parent / "f.txt"), "pics/f.txt")
    refused = run(data, "bucket", "delete", "pics", ok=False).output
    assert "error: BucketNotEmpty:" in refused and "not empty" in refused
    run(data, "object", "rm", "pics/f.txt")
    assert "bucket pics deleted" in run(data, "bucket", "delete", "pics").output
    assert "error: NoSuchBucket:" in run(data, "bucket", "delete", "pics", ok=False).output
    assert "pics" not in run(data, "bucket", "list").output


def test_objects_put_get_list_rm(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(data, "bucket", "create", "docs")
    small = tmp_path / "note.txt"
    small.write_bytes(b"hello tidings\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * MIB + 123))

    out = run(data, "object", "put", str(small), "docs/a/note.txt").output
    assert reported_etag(out) == hashlib.md5(small.read_bytes()).hexdigest().upper()
    assert "docs/a/note.txt: 14 bytes" in out
    # A destination ending in / (or a bare bucket) keeps the file's name.
    assert "to docs/a/b/big.bin:" in run(data, "object", "put", str(big), "docs/a/b/").output
    assert "to docs/note.txt:" in run(data, "object", "put", str(small), "docs").output
    # --part-size goes through the multipart service: ETag of the multipart form.
    out = run(data, "object", "put", str(big), "docs/multi.bin", "--part-size", "1M").output
    assert reported_etag(out).endswith("-4"), out
    out = run(data, "object", "put", "-", "docs/piped.txt", stdin=b"from stdin").output
    assert "uploaded stdin to docs/piped.txt: 10 bytes" in out

    # Downloads: to a file, into a directory, to stdout (report on stderr), by key name.
    target = tmp_path / "copy.bin"
    run(data, "object", "get", "docs/multi.bin", str(target))
    assert target.read_bytes() == big.read_bytes()
    into = tmp_path / "dir"
    into.mkdir()
    run(data, "object", "get", "docs/a/b/big.bin", str(into))
    assert (into / "big.bin").read_bytes() == big.read_bytes()
    piped = run(data, "object", "get", "docs/piped.txt", "-")
    assert piped.stdout_bytes == b"from stdin"
    assert "downloaded docs/piped.txt to stdout" in piped.stderr
    monkeypatch.chdir(tmp_path)  # without FILE, the download lands in the current dir
    run(data, "object", "get", "docs/a/note.txt")
    assert (tmp_path / "note.txt").read_bytes() == b"hello tidings\n"
    assert not [p for p in tmp_path.rglob("*.part")], "a temp download was left behind"

    listed = run(data, "object", "list", "docs").output
    for key in ("a/note.txt", "a/b/big.bin", "note.txt", "multi.bin", "piped.txt"):
        assert key in listed
    assert "5 object(s), 0 prefix(es)" in listed
    assert re.search(r"multi\.bin +│ +3145851 │ .* │ [0-9A-F]{32}-4 +│ Standard", listed), listed
    grouped = run(data, "object", "list", "docs", "--delimiter", "/").output
    assert "a/ " in grouped and "PRE" in grouped and "a/note.txt" not in grouped
    assert "3 object(s), 1 prefix(es)" in grouped
    assert "a/b/big.bin" in run(data, "object", "list", "docs/a/b").output
    page = run(data, "object", "list", "docs", "--limit", "2").output
    assert "2 object(s)" in page and "more follow: --marker a/note.txt" in page
    rest = run(data, "object", "list", "docs", "--marker", "a/note.txt").output
    assert "3 object(s)" in rest and "a/b/big.bin" not in rest

    assert "deleted docs/note.txt" in run(data, "object", "rm", "docs/note.txt").output
    assert "did not exist" in run(data, "object", "rm", "docs/note.txt").output
    assert "error: NoSuchKey:" in run(data, "object", "get", "docs/note.txt", "-", ok=False).output
    assert "error: NoSuchBucket:" in run(data, "object", "list", "nope", ok=False).output
    bad_key = run(data, "object", "put", str(small), "docs//abs", ok=False).output
    assert "error: InvalidObjectName:" in bad_key
    assert "names no object" in run(data, "object", "rm", "docs", ok=False).output


def test_progress_bars_only_when_asked_or_on_a_terminal(data: Path, tmp_path: Path) -> None:
    run(data, "bucket", "create", "big")
    file = tmp_path / "nine.bin"
    file.write_bytes(os.urandom(9 * MIB))  # above the threshold, but no terminal here
    quiet = run(data, "object", "put", str(file), "big/nine.bin")
    assert "━" not in quiet.output and quiet.stderr == ""
    shown = run(data, "object", "get", "big/nine.bin", "-", "--progress")
    assert shown.stdout_bytes == file.read_bytes()  # the bar never touches the data
    assert "download big/nine.bin" in shown.stderr and "9.0/9.0 MiB" in shown.stderr


def test_odd_keys_are_printed_escaped(data: Path, tmp_path: Path) -> None:
    run(data, "bucket", "create", "odd")
    file = tmp_path / "f"
    file.write_bytes(b"odd")
    key = "line\nbreak[bold]\x1b[31m red"
    out = run(data, "object", "put", str(file), f"odd/{key}").output
    assert "odd/line\\nbreak[bold]\\x1b[31m red" in out and "\x1b" not in out
    listed = run(data, "object", "list", "odd").output
    assert "line\\nbreak[bold]\\x1b[31m red" in listed and "\x1b" not in listed
    got = run(data, "object", "get", f"odd/{key}", "-").stdout_bytes
    assert got == b"odd"


def test_versioned_bucket_rm_adds_and_removes_delete_markers(data: Path, tmp_path: Path) -> None:
    run(data, "bucket", "create", "vers")

    async def enable() -> None:
        async with running(load_settings(data_dir=data)) as app:
            await app.buckets.set_versioning("vers", "Enabled")

    asyncio.run(enable())
    file = tmp_path / "f"
    file.write_bytes(b"first")
    first = run(data, "object", "put", str(file), "vers/k").output
    version = re.search(r"version (\S+)$", first.strip())
    assert version is not None, first
    file.write_bytes(b"second")
    run(data, "object", "put", str(file), "vers/k")

    removed = run(data, "object", "rm", "vers/k").output
    marker = re.search(r"delete marker (\S+) created", removed)
    assert marker is not None, removed
    assert "NoSuchKey" in run(data, "object", "get", "vers/k", "-", ok=False).output
    old = run(data, "object", "get", "vers/k", "-", "--version-id", version.group(1))
    assert old.stdout_bytes == b"first"
    out = run(data, "object", "rm", "vers/k", "--version-id", marker.group(1)).output
    assert f"delete marker {marker.group(1)} removed" in out
    assert run(data, "object", "get", "vers/k", "-").stdout_bytes == b"second"


# -- the CLI and a server on one data dir -----------------------------------------------


def tidings(server: ServerProcess, *args: str) -> str:
    """Run the installed CLI as a user would, with the server's account settings."""
    done = subprocess.run(
        [sys.executable, "-m", "tidings", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        env={**server.env(), "COLUMNS": "200"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_cli_and_server_read_each_others_objects(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    bodies = {
        "cli/small.txt": b"small, with metadata",
        "cli/big.bin": os.urandom(3 * MIB + 7),
        "cli/multi.bin": os.urandom(MIB + MIB // 2),
    }
    for key, body in bodies.items():
        (tmp_path / key.replace("/", "_")).write_bytes(body)
    fresh_server.data_dir.mkdir(parents=True)
    tidings(fresh_server, "bucket", "create", "shared")
    etags = {
        "cli/small.txt": tidings(
            fresh_server, "object", "put", str(tmp_path / "cli_small.txt"), "shared/cli/small.txt",
            "--content-type", "text/plain; charset=utf-8", "--meta", "Color=blue",
        ),
        "cli/big.bin": tidings(
            fresh_server, "object", "put", str(tmp_path / "cli_big.bin"), "shared/cli/big.bin"
        ),
        "cli/multi.bin": tidings(
            fresh_server, "object", "put", str(tmp_path / "cli_multi.bin"), "shared/cli/multi.bin",
            "--part-size", "512K",
        ),
    }  # fmt: skip

    # The server reads what the CLI wrote: oss2 verifies the CRC-64 of every download.
    fresh_server.start()
    bucket = oss2.Bucket(
        oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), fresh_server.oss_url, "shared"
    )
    assert [b.name for b in oss2.BucketIterator(oss2.Service(bucket.auth, bucket.endpoint))] == [
        "shared"
    ]
    for key, body in bodies.items():
        crc = oss2.utils.Crc64(0)
        crc.update(body)
        result = bucket.get_object(key)
        assert result.read() == body  # oss2 raises if the CRC-64 of the bytes differs
        assert result.etag == reported_etag(etags[key])
        assert result.server_crc == crc.crc
        head = bucket.head_object(key)
        assert (head.etag, head.server_crc, head.content_length) == (
            result.etag,
            crc.crc,
            len(body),
        )
    small = bucket.head_object("cli/small.txt")
    assert small.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert small.headers["x-oss-meta-color"] == "blue"
    assert bucket.head_object("cli/big.bin").headers["Content-Type"] == "application/octet-stream"

    # ... and the CLI reads what oss2 wrote through the server: put, append, multipart.
    written = {"sdk/put.bin": os.urandom(2 * MIB), "sdk/log.txt": b"line one\nline two\n"}
    bucket.put_object("sdk/put.bin", written["sdk/put.bin"])
    first = bucket.append_object("sdk/log.txt", 0, b"line one\n")
    bucket.append_object("sdk/log.txt", first.next_position, b"line two\n", init_crc=first.crc)
    parts = [os.urandom(200 * 1024), os.urandom(200 * 1024), os.urandom(1000)]
    upload_id = bucket.init_multipart_upload("sdk/multi.bin").upload_id
    infos = [
        oss2.models.PartInfo(n, bucket.upload_part("sdk/multi.bin", upload_id, n, part).etag)
        for n, part in enumerate(parts, start=1)
    ]
    bucket.complete_multipart_upload("sdk/multi.bin", upload_id, infos)
    written["sdk/multi.bin"] = b"".join(parts)

    # While the server runs: the CLI lists and reads through the same store.
    listed = tidings(fresh_server, "object", "list", "shared/sdk/")
    assert "3 object(s)" in listed
    assert bucket.head_object("sdk/multi.bin").etag in listed
    tidings(fresh_server, "object", "get", "shared/sdk/put.bin", str(tmp_path / "put.bin"))
    assert (tmp_path / "put.bin").read_bytes() == written["sdk/put.bin"]
    assert "deleted shared/sdk/put.bin" in tidings(
        fresh_server, "object", "rm", "shared/sdk/put.bin"
    )
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("sdk/put.bin")

    # With the server stopped, the data is all still there for the CLI.
    fresh_server.stop()
    for key in ("sdk/log.txt", "sdk/multi.bin"):
        out = tmp_path / key.replace("/", "_")
        tidings(fresh_server, "object", "get", f"shared/{key}", str(out))
        assert out.read_bytes() == written[key]
    assert "5 object(s)" in tidings(fresh_server, "object", "list", "shared")
