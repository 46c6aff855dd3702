"""The `tidings serve` contract: listening lines, /health, credentials, graceful exit."""

from __future__ import annotations

import signal
import threading
import time
import urllib.request

from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, QueueMeta

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess


def test_every_listener_prints_its_url_and_answers_health(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    assert set(fresh_server.urls) == {"oss", "mns", "console"}
    for url in fresh_server.urls.values():
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            assert response.status == 200


def test_credentials_come_from_the_environment(fresh_server: ServerProcess) -> None:
    fresh_server.start()
    good = Account(fresh_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    good.get_queue("q").create(QueueMeta())
    bad = Account(fresh_server.mns_url, "tidings", "tidings-secret")
    try:
        bad.get_queue("q").get_attributes()
    except MNSServerException as error:
        assert error.type == "InvalidAccessKeyId"
    else:
        raise AssertionError("the default key must not work when another is configured")


def test_sigterm_answers_long_polls_and_keeps_acknowledged_writes(
    fresh_server: ServerProcess,
) -> None:
    fresh_server.start()
    account = Account(fresh_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    queue = account.get_queue("q")
    queue.create(QueueMeta())
    queue.send_message(Message("kept"))
    waiting = account.get_queue("empty")
    waiting.create(QueueMeta())
    outcome: list[str] = []

    def long_poll() -> None:
        try:
            waiting.receive_message(30)
        except MNSServerException as error:
            outcome.append(error.type)
        except Exception as error:
            outcome.append(type(error).__name__)

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert fresh_server.stop(signal.SIGTERM) == 0
    poller.join(5)
    assert time.monotonic() - started < 5
    assert outcome == ["MessageNotExist"]

    fresh_server.start()
    account = Account(fresh_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert account.get_queue("q").receive_message(0).message_body == b"kept"


def test_metrics_count_commits_and_writes(fresh_server: ServerProcess) -> None:
    fresh_server.start()

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"{fresh_server.urls['console']}/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            lines = r.read().decode().splitlines()
        return {
            name: float(value)
            for name, _, value in (line.partition(" ") for line in lines)
            if name.startswith("tidings_")
        }

    before = scrape()
    queue = Account(fresh_server.mns_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET).get_queue("m")
    queue.create(QueueMeta())
    for n in range(5):
        queue.send_message(Message(f"m{n}"))
    after = scrape()
    assert after["tidings_store_writes_total"] - before["tidings_store_writes_total"] >= 6
    assert after["tidings_store_commits_total"] > before["tidings_store_commits_total"]
    assert after["tidings_deliveries_in_flight"] == 0
    # Commits leave the event loop only while their average is slow (at least 2 ms).
    on_loop, commit_ms = (
        after[f"tidings_store_{n}"] for n in ("commits_on_event_loop", "commit_milliseconds")
    )
    assert commit_ms > 0 and (on_loop == 1 or (on_loop == 0 and commit_ms >= 2))
