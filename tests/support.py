"""Test support: run a real `tidings serve` process and talk to it."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCESS_KEY_ID = "test-key"
ACCESS_KEY_SECRET = "test-secret"
ACCOUNT_ID = "1111222233334444"
START_TIMEOUT = 30.0


@dataclass
class ServerProcess:
    """A `tidings serve` subprocess on free ports, restartable on the same data dir."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None

    @property
    def mns_url(self) -> str:
        """Base URL of the MNS listener."""
        return self.urls["mns"]

    @property
    def oss_url(self) -> str:
        """Base URL of the OSS listener."""
        return self.urls["oss"]

    def env(self) -> dict[str, str]:
        """The environment the server runs with."""
        env = dict(os.environ)
        env.update(
            TIDINGS_ACCESS_KEY_ID=ACCESS_KEY_ID,
            TIDINGS_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
            TIDINGS_ACCOUNT_ID=ACCOUNT_ID,
        )
        return env

    def start(self) -> ServerProcess:
        """Start the server and wait until every listener answers /health."""
        command = [
            sys.executable, "-m", "tidings", "serve", "--data-dir", str(self.data_dir),
            "--host", "127.0.0.1", "--oss-port", "0", "--mns-port", "0", "--console-port", "0",
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env()
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        self.urls = {}
        while len(self.urls) < 3:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"tidings serve exited early ({self.process.poll()})")
            if " listening on " in line:
                name, _, url = line.strip().partition(" listening on ")
                self.urls[name] = url
            if time.monotonic() > deadline:
                raise RuntimeError("tidings serve did not start in time")
        for url in self.urls.values():
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                assert response.status == 200
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Stop the server with `sig` (SIGKILL for a crash) and return its exit status."""
        if self.process is None:
            return 0
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
        self.process = None
        return code

    def kill(self) -> None:
        """Crash the server: SIGKILL, no chance to flush anything."""
        self.stop(signal.SIGKILL)


def console(
    server: ServerProcess, method: str, path: str, body: object = None, auth: bool = True
) -> tuple[int, Any]:
    """One console API call: (HTTP status, decoded JSON)."""
    headers = {"Content-Type": "application/json"}
    if auth:
        token = base64.b64encode(f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(
        server.urls["console"] + path,
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
