"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess


def service_available(host: str, port: int) -> bool:
    """Whether something listens on host:port (for tests needing an external service)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a service is absent, except under CI=true where it must be there."""
    if service_available(host, port):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} at {host}:{port} is required under CI=true")
    pytest.skip(f"{name} is not running at {host}:{port}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real `tidings serve` process for the whole session.

    Every test that makes a bucket removes it again, but a failing test may not, so the
    session server allows far more than the cloud's 100 buckets per account.
    """
    data_dir = tmp_path_factory.mktemp("server-data")
    (data_dir / "tidings.toml").write_text("[server]\nmax_buckets = 100000\n")
    process = ServerProcess(data_dir).start()
    yield process
    process.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own, for tests that restart or kill it."""
    process = ServerProcess(tmp_path / "data")
    yield process
    if process.process is not None:
        process.stop()
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


@pytest.fixture
def account(server: ServerProcess):  # type: ignore[no-untyped-def]
    """An official `aliyun-mns-sdk` Account pointed at the session server."""
    from mns.account import Account

    return Account(server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses."""
    return f"q-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bucket_name() -> str:
    """A bucket name no other test uses."""
    return f"b-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def oss2_bucket(server: ServerProcess, bucket_name: str):  # type: ignore[no-untyped-def]
    """An official `oss2` Bucket (V1 signatures, CRC checks on) on a fresh bucket, removed
    with everything in it afterwards."""
    from tests.integration.oss2_support import new_bucket, remove_bucket

    bucket = new_bucket(server, bucket_name)
    yield bucket
    remove_bucket(bucket)


@pytest.fixture
def oss_v2_client(server: ServerProcess):  # type: ignore[no-untyped-def]
    """An official `alibabacloud-oss-v2` Client with its defaults (V4 signatures, CRC on)."""
    import alibabacloud_oss_v2 as oss

    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(
        ACCESS_KEY_ID, ACCESS_KEY_SECRET
    )
    config.region = "cn-hangzhou"
    config.endpoint = server.oss_url
    return oss.Client(config)
