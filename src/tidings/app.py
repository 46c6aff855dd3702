"""Wires the store, the services and the listeners' ASGI apps together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from tidings.api.console.app import ConsoleApp
from tidings.api.control.app import ControlApp
from tidings.api.control.context import Services as ControlServices
from tidings.api.mns.app import PUSH_CERT_PATH, MnsApp
from tidings.api.oss.callback_app import OssCallbackApp
from tidings.api.oss.callback_sender import CallbackSender
from tidings.api.oss.context import OssContext
from tidings.auth.callback_key import CallbackSigner
from tidings.auth.keys import KeyRing
from tidings.auth.push import PushSigner
from tidings.blobs.local import LocalBlobStore
from tidings.clock import ScaledClock
from tidings.config import Settings
from tidings.delivery.engine import DeliveryEngine
from tidings.delivery.targets import Target
from tidings.delivery.targets.http import HttpTarget
from tidings.delivery.targets.mail import MailTarget, SmtpRelay
from tidings.delivery.targets.sms import SmsTarget
from tidings.metrics import Metrics
from tidings.services.blob_gc import BlobCollector
from tidings.services.buckets import BucketService
from tidings.services.deliveries import LedgerService
from tidings.services.emit import EmitService
from tidings.services.endpoints import HTTP, MAIL, SMS
from tidings.services.lifecycle import LifecycleRunner
from tidings.services.lifecycle_events import LifecycleEvents
from tidings.services.multipart import MultipartService
from tidings.services.object_events import ObjectEvents
from tidings.services.objects import ObjectService
from tidings.services.queues import QueueService
from tidings.services.rules import RuleService
from tidings.services.topic_outlets import TopicOutlets
from tidings.services.topics import TOPIC_RETENTION_SECONDS, EndpointPolicy, TopicService
from tidings.services.vod_callbacks import VodCallbacks
from tidings.store.sqlite import SqliteStore
from tidings.store.sqlite_object_store import SqliteObjectStore
from tidings.store.sqlite_rules import SqliteRuleStore
from tidings.store.sqlite_vod_callbacks import SqliteVodCallbackStore

log = logging.getLogger(__name__)

EXPIRY_SWEEP_SECONDS = 5.0


class Tidings:
    """One running instance: store, services, background tasks and ASGI apps."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = ScaledClock(settings.clock_speed)
        self.store = SqliteStore(settings.database_path, synchronous=settings.synchronous)
        self.queues = QueueService(
            self.store, self.clock, region=settings.region, account_id=settings.account_id
        )
        self.topics = TopicService(
            self.store,
            self.clock,
            account_id=settings.account_id,
            queues=self.queues,
            policy=EndpointPolicy(
                allowed_networks=settings.allowed_networks,
                denied_networks=settings.denied_networks,
                mail_enabled=settings.smtp_host is not None,
                sms_enabled=settings.sms_gateway_url is not None,
            ),
        )
        self.signer = PushSigner.load_or_create(settings.data_dir / "push")
        self.public_mns_url = settings.public_mns_url or ""
        http_target = HttpTarget(
            self.signer,
            self.push_cert_url,
            settings.account_id,
            allowed_networks=settings.allowed_networks,
            denied_networks=settings.denied_networks,
        )
        targets: dict[str, Target] = {HTTP: http_target}
        if settings.smtp_host is not None:
            targets[MAIL] = MailTarget(
                SmtpRelay(
                    settings.smtp_host,
                    settings.smtp_port,
                    settings.smtp_username,
                    settings.smtp_password,
                    settings.smtp_starttls,
                    settings.mail_sender,
                )
            )
        if settings.sms_gateway_url is not None:
            targets[SMS] = SmsTarget(settings.sms_gateway_url)
        self.targets = targets
        self.engine = DeliveryEngine(
            self.store, self.clock, self.queues, settings.account_id, targets
        )
        self.ledger = LedgerService(self.store, self.clock)
        self.metrics = Metrics(self._metric_values)
        self.console_app = ConsoleApp(self.ledger, KeyRing(settings.keys()), self.metrics)
        self.mns_app = MnsApp(
            self.queues, self.topics, KeyRing(settings.keys()), self.signer.certificate_pem
        )
        self.rules = RuleService(
            SqliteRuleStore(self.store),
            self.topics,
            self.queues,
            self.clock,
            settings.region,
            settings.account_id,
        )
        self.mns_app.control = ControlApp(
            ControlServices(
                self.queues, self.topics, settings.region, settings.account_id, self.rules
            ),
            KeyRing(settings.keys()),
        )
        # The producer emulator (`tidings emit`, console `/api/emit/`): DirectMail, VOD
        # and Vision AI events through the rules, plus VOD's own callbacks.
        self.vod_callbacks = VodCallbacks(
            SqliteVodCallbackStore(self.store),
            self.queues,
            self.clock,
            allowed_networks=settings.allowed_networks,
            denied_networks=settings.denied_networks,
        )
        self.emitter = EmitService(
            self.rules,
            self.topics,
            self.vod_callbacks,
            self.clock,
            settings.region,
            settings.account_id,
        )
        self.console_app.emitter = self.emitter
        self.object_events = ObjectEvents(
            self.rules,
            TopicOutlets(self.topics, self.queues),
            self.queues,
            self.clock,
            settings.region,
            settings.account_id,
        )
        object_store = SqliteObjectStore(self.store)
        self.blobs = LocalBlobStore(settings.blobs_path)
        self.collector = BlobCollector(object_store, self.blobs)
        self.buckets = BucketService(object_store, self.clock, settings.max_buckets)
        self.objects = ObjectService(
            object_store, self.blobs, self.clock, self.collector, events=self.object_events
        )
        self.multipart = MultipartService(
            object_store, self.blobs, self.clock, self.collector, events=self.object_events
        )
        self.lifecycle = LifecycleRunner(
            object_store,
            self.clock,
            self.collector,
            on_action=LifecycleEvents(self.object_events, self.buckets, object_store),
        )
        # Upload callbacks are signed with a key pair of their own, kept in the data dir.
        self.callbacks = CallbackSender(
            CallbackSigner.load_or_create(settings.data_dir / "callback"),
            timeout=settings.upload_callback_timeout,
            allowed_networks=settings.allowed_networks,
            denied_networks=settings.denied_networks,
        )
        self.oss_app = OssCallbackApp(
            OssContext(
                buckets=self.buckets,
                objects=self.objects,
                multipart=self.multipart,
                keys=KeyRing(settings.keys()),
                clock=self.clock,
                region=settings.region,
                domains=settings.oss_domains,
            ),
            self.callbacks,
            settings.public_oss_url,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._delivering = False

    def _metric_values(self) -> dict[str, tuple[str, str, float]]:
        writer = self.store.writer
        return {
            "tidings_store_commits": ("counter", "Write transactions committed.", writer.commits),
            "tidings_store_writes": (
                "counter",
                "Write operations committed (ops / commits = mean group-commit size).",
                writer.ops,
            ),
            "tidings_store_commit_milliseconds": (
                "gauge",
                "Moving average of COMMIT durations (over 4 ms, commits leave the event loop).",
                writer.commit_ms,
            ),
            "tidings_store_commits_on_event_loop": (
                "gauge",
                "1 while quick commits run on the event loop, 0 while on the writer thread.",
                float(writer.commits_on_loop),
            ),
            "tidings_deliveries_in_flight": (
                "gauge",
                "Delivery attempts under way in this process.",
                self.engine.in_flight,
            ),
        }

    def push_cert_url(self) -> str:
        """Where push receivers fetch the signing certificate."""
        return f"{self.public_mns_url.rstrip('/')}{PUSH_CERT_PATH}"

    async def start(self, background: bool = True) -> None:
        """Open the store and, for a server, start the background tasks."""
        await self.store.open()
        await self.blobs.open(clean_temp=background)
        if background:
            await self.collector.start()
            sweep = EXPIRY_SWEEP_SECONDS / self.settings.clock_speed
            self._tasks.append(asyncio.create_task(self.queues.run_expiry(sweep)))
            self._tasks.append(asyncio.create_task(self._sweep_topics(sweep)))
            self._tasks.append(asyncio.create_task(self.lifecycle.run()))
            self.topics.on_published = self.engine.submit
            self.ledger.on_replay = self.engine.wake
            await self.engine.start()
            self._delivering = True

    async def _sweep_topics(self, every_seconds: float) -> None:
        """Expire topic messages past retention and forget old ledger entries."""
        while True:
            try:
                now_ms = self.clock.now_ms()
                await self.store.expire_topic_messages(now_ms)
                await self.store.prune_ledger(now_ms - TOPIC_RETENTION_SECONDS * 1000)
            except Exception:
                log.exception("topic retention sweep failed")
            await asyncio.sleep(every_seconds)

    def stop_waiting(self) -> None:
        """Answer every long poll now (first step of a graceful shutdown)."""
        self.queues.notifier.close()

    async def stop(self) -> None:
        """Stop background tasks and flush the store."""
        self.stop_waiting()
        if self._delivering:
            await self.engine.stop()
            for target in self.targets.values():
                await target.close()
            self._delivering = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.callbacks.close()
        await self.collector.stop()
        await self.blobs.close()
        await self.store.close()


@contextlib.asynccontextmanager
async def running(settings: Settings, background: bool = False) -> AsyncIterator[Tidings]:
    """A started instance for the CLI or tests; stopped on exit."""
    instance = Tidings(settings)
    await instance.start(background=background)
    try:
        yield instance
    finally:
        await instance.stop()
