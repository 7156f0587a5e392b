"""The Celery event stream in, samples handed to a sink a batch at a time, and what was lost counted.

Workers must run with ``-E`` (or ``worker_send_task_events = True``) to send task events; heartbeats and
worker-online/offline come either way. ``task_send_sent_event`` is not needed. alertd does not switch events
on across the cluster unless ``enable_task_events`` says so.

Anyone who can publish on the broker can publish on the event exchange. Every message is checked where it is
read, in the receiving thread (validate.py): a message that is too long, cannot be decoded, or holds an event
with missing or wrong-typed fields is counted in ``alertd_events_malformed_total{reason}`` and dropped, and the
events before and after it go on as usual; it never reaches Celery's receiver code, where it would raise and
cost a reconnection.

Loss is never silent: a reconnection counts in ``alertd_event_stream_reconnects_total``, the gaps in each
sender's event clock count the events that never arrived in ``alertd_events_lost_total`` (clocks.py), and
``AlertdEventsLost`` fires for a subscription dropped while the broker stayed up (Redis drops a subscriber whose
output buffer is full): one that came back at the first attempt. A clock gap only counts and logs: remote
control commands (alertd's own inspect broadcasts, Flower, ``celery inspect``) move the clocks too, unseen, so
a gap is an estimate that must not page anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import reprlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kombu.exceptions import ContentDisallowed

from alertd.collectors.base import CollectorContext
from alertd.collectors.events import redis_buffer, validate
from alertd.collectors.events.clocks import ClockGaps
from alertd.collectors.events.handoff import Handoff
from alertd.collectors.events.metrics import LABELS, EventStreamMetrics
from alertd.collectors.events.settings import EventSettings
from alertd.collectors.events.translate import EventTranslator
from alertd.config.secrets import redact_url
from alertd.models import Sample

if TYPE_CHECKING:
    from alertd.collectors.beat.tracker import BeatTracker
    from alertd.notify import InternalAlerts

log = logging.getLogger(__name__)

LABEL_OVERFLOW = "AlertdEventLabelOverflow"
EVENTS_LOST = "AlertdEventsLost"
# The overflow alert resolves once the label is back under this share of its cap (no flapping at the cap).
_RESOLVE_BELOW = 0.9
# At most one warning per reason this often: junk can arrive a thousand times a second.
_WARN_EVERY = 60.0

Sink = Callable[[list[Sample]], None]

# How long the receiving thread blocks in one wait for the broker: the bound on how late it sees stop().
_DRAIN_SLICE = 0.25


class EventConsumer:
    """Consumes the event stream in a thread and feeds the translator on the event loop.

    Events go from the receiving thread to the loop in batches (handoff.py): the first event after a quiet
    spell at once, and under load whatever arrived while the loop was busy with the previous batch. Each batch
    is translated there and passed to ``sink`` in one call, so a burst costs one ingest and one evaluation of
    the rules it concerns, not one per event. The translator and the sink only ever run on the loop, so
    neither needs a lock. The broker connection is retried with exponential backoff between ``reconnect_min``
    and ``reconnect_max``; while it is down, ``alertd_event_stream_up`` is 0.
    """

    def __init__(
        self,
        settings: EventSettings,
        context: CollectorContext,
        sink: Sink,
        *,
        beat: BeatTracker | None = None,
        observe: Callable[[dict[str, Any]], None] | None = None,
        metrics: EventStreamMetrics | None = None,
        internal: InternalAlerts | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        self.sink = sink
        self.observe = observe  # sees each event on the loop before it is translated (the daemon's metrics)
        self.metrics = metrics or EventStreamMetrics()
        self.internal = internal  # where the label overflow alert fires, when the daemon has one
        self.translator = EventTranslator(
            heartbeat_multiplier=settings.heartbeat_multiplier,
            forget_after=settings.forget_after,
            max_task_names=settings.max_task_names,
            max_label_values=settings.max_label_values,
            label_idle_after=settings.label_idle_after,
            stream_up=False,
            beat=beat,  # periodic tasks' runs, when the app's beat schedule is watched
        )
        self.translator.on_overflow = self._overflowed
        self._overflowing: set[str] = set()
        self._warned: dict[str, float] = {}
        self.connected = False
        self.connects = 0
        self._stopping = threading.Event()
        self._receiver: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._last_error: str | None = None
        self._next_enable = 0.0
        self._failed_attempts = 0  # connection attempts that failed since the stream was last up
        self._handoff: Handoff | None = None
        self.gaps = ClockGaps(max_senders=settings.max_label_values, forget_after=settings.forget_after)
        self._lost_at: float | None = None  # when loss was last seen, while AlertdEventsLost fires

    # -- the loop side ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until ``stop()`` (even one called before ``run``); ticks heartbeat expiry meanwhile."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._handoff = Handoff(self._loop, self._deliver)
        self._emit(self.translator.set_stream_up(False, self.context.clock.now()))
        if self.internal is not None:  # a consumer rebuilt by a reload starts with no label held
            for label in LABELS:
                self.internal.resolve(LABEL_OVERFLOW, {"label": label}, self.context.clock.now())
            self.internal.resolve(EVENTS_LOST, {}, self.context.clock.now())
        thread = threading.Thread(target=self._consume_forever, name="alertd-events", daemon=True)
        thread.start()
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.tick_interval)
                now = self.context.clock.now()
                self._emit(self.translator.tick(now))
                self._resolve_overflows(now)
                self._settle_loss(now)
        finally:
            self._stopping.set()
            if self._receiver is not None:
                self._receiver.should_stop = True
            await asyncio.to_thread(thread.join, 10.0)

    def stop(self) -> None:
        """Ask ``run()`` to return; safe to call from any thread."""
        self._stopping.set()
        receiver = self._receiver
        if receiver is not None:
            receiver.should_stop = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def _emit(self, samples: list[Sample]) -> None:
        if not samples:
            return
        try:
            self.sink(samples)
        except Exception:  # the sink is the daemon's; a bug there must not stop the stream
            log.exception("event sink failed")

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        """A batch from the receiving thread: translated event by event, handed to the sink in one call."""
        samples: list[Sample] = []
        now = self.context.clock.now()
        for event in events:
            if self.observe is not None:
                self.observe(event)
            self.gaps.feed(event, now)
            try:
                samples.extend(self.translator.feed(event))
            except Exception:  # one malformed event must not stop the stream
                log.exception("cannot translate event %r", event.get("type"))
        self._emit(samples)

    def _settle_loss(self, now: float) -> None:
        lost = self.gaps.settle(now)
        if lost:  # counted and logged, never paged: see the module's docstring
            self.metrics.lost.inc(lost)
            if time.monotonic() >= self._warned.get("clock gaps", 0.0):
                self._warned["clock gaps"] = time.monotonic() + _WARN_EVERY
                log.warning("about %d events from the event stream may not have arrived (gaps in their senders' "
                            "event clocks; remote control commands move them too)", lost)
        elif self._lost_at is not None and now - self._lost_at >= self.settings.loss_resolve_after:
            self._lost_at = None
            if self.internal is not None:
                self.internal.resolve(EVENTS_LOST, {}, now)

    def _lose(self, summary: str, now: float) -> None:
        self._lost_at = now
        if self.internal is not None:
            self.internal.fire(EVENTS_LOST, {}, summary, now)
        if time.monotonic() >= self._warned.get(EVENTS_LOST, 0.0):  # a steady loss is one warning a minute
            self._warned[EVENTS_LOST] = time.monotonic() + _WARN_EVERY
            log.warning("%s", summary)

    def _overflowed(self, label: str) -> None:
        self.metrics.label_overflow.labels(label).inc()
        if label in self._overflowing:
            return
        self._overflowing.add(label)
        limit = self.translator.max_label_values
        summary = (f"more than {limit} distinct {label} values from the event stream: new ones are counted as "
                   "__overflow__" + (" (workers: not tracked)" if label == "worker" else ""))
        if self.internal is not None:
            self.internal.fire(LABEL_OVERFLOW, {"label": label}, summary, self.context.clock.now())
        else:
            log.warning("%s", summary)

    def _resolve_overflows(self, now: float) -> None:
        for label in list(self._overflowing):
            cap = self.translator.caps.get(label)
            held = len(cap) if cap is not None else len(self.translator.workers)
            if held < self.translator.max_label_values * _RESOLVE_BELOW:
                self._overflowing.discard(label)
                if self.internal is not None:
                    self.internal.resolve(LABEL_OVERFLOW, {"label": label}, now)

    def _set_connected(self, up: bool, again: bool = False, dropped: bool = False) -> None:
        """``again``: connected after having been; ``dropped``: at the first attempt, so the broker stayed up."""
        self.connected = up
        now = self.context.clock.now()
        self._emit(self.translator.set_stream_up(up, now))
        if again:
            self.metrics.reconnects.inc()
        if dropped:  # after an outage, the broker's own alerts have said it (and workers buffer while offline)
            self._lose("the event stream's subscription was dropped while the broker stayed up (a full output "
                       "buffer?) and was connected again: events sent meanwhile are lost", now)

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while the thread was finishing
            loop.call_soon_threadsafe(fn, *args)

    # -- the thread side --------------------------------------------------------------------------------

    def _consume_forever(self) -> None:
        from alertd.collectors.workers import celery_app_for

        app = celery_app_for(self.context)
        redis_buffer.check(self.context.broker_url)
        delay = self.settings.reconnect_min
        while not self._stopping.is_set():
            connected = self._consume_once(app)
            if self._stopping.is_set():
                break
            self._failed_attempts = 0 if connected else self._failed_attempts + 1
            self._to_loop(self._set_connected, False)
            if connected:
                delay = self.settings.reconnect_min
            self._stopping.wait(delay)
            delay = min(delay * 2, self.settings.reconnect_max)

    def _consume_once(self, app: Any) -> bool:
        """One connection's life: returns whether it got as far as consuming."""
        started = {"ok": False, "iterations": 0}

        def on_iteration() -> None:
            started["iterations"] += 1
            # The first iteration comes before the first drain of the connection, and on Redis the event
            # subscription (SUBSCRIBE) only takes effect in that drain: the stream is up from the second.
            if not started["ok"] and started["iterations"] >= 2:
                started["ok"] = True
                self.connects += 1
                if self._last_error is not None:
                    log.info("event stream reconnected to %s", redact_url(self.context.broker_url))
                    self._last_error = None
                elif self.connects == 1:
                    log.info("event stream connected to %s", redact_url(self.context.broker_url))
                self._next_enable = 0.0
                again = self.connects > 1
                self._to_loop(self._set_connected, True, again, again and self._failed_attempts == 0)
            self._maybe_enable_events(app)

        try:
            # No channel: the receiver would open it in its constructor, retrying forever while the broker is
            # down. Each consume() opens its own connection instead, and fails fast (connect_max_retries = 0)
            # so that the backoff, the stream_up sample and stop() all stay here.
            receiver = app.events.Receiver(None, handlers={"*": self._on_event})
            receiver.create_connection = app.connection_for_read
            # kombu's own hooks, not Celery's callback: the raw message comes here undecoded (read), and what
            # kombu cannot turn into a message at all goes to on_decode_error, never up the drain loop.
            receiver.get_consumers = lambda consumer, channel: [consumer(
                queues=[receiver.queue], on_message=lambda message: self._read(receiver, message),
                no_ack=True, accept=receiver.accept,
            )]
            receiver.on_decode_error = self._on_decode_error
            receiver.connect_max_retries = 0
            receiver.on_iteration = on_iteration
            receiver.should_stop = self._stopping.is_set()
            self._receiver = receiver
            # wakeup broadcasts one "heartbeat" command so every worker announces itself at once.
            for _ in receiver.consume(limit=None, timeout=None, safety_interval=_DRAIN_SLICE, wakeup=True):
                if self._stopping.is_set():
                    break
        except Exception as exc:  # any broker or transport error means: reconnect
            message = f"{type(exc).__name__}: {exc}"
            if message != self._last_error:
                log.warning("event stream from %s failed: %s", redact_url(self.context.broker_url), message)
            self._last_error = message
        finally:
            self._receiver = None
        return bool(started["ok"])

    def _on_event(self, event: dict[str, Any]) -> None:
        handoff = self._handoff
        if handoff is not None:
            handoff.put(event)

    def _read(self, receiver: Any, message: Any) -> None:
        """One message off the event exchange, in the receiving thread: its valid events go on, junk is counted."""
        try:
            self._read_events(receiver, message)
        except Exception as exc:  # whatever is in a message, it must not reach the drain loop
            self._malformed(validate.UNDECODABLE, f"{type(exc).__name__}: {exc}")

    def _read_events(self, receiver: Any, message: Any) -> None:
        body = message.body
        if isinstance(body, bytes | bytearray | memoryview | str) and len(body) > self.settings.max_message_bytes:
            self._malformed(validate.TOO_LARGE, f"{len(body)} bytes")
            return
        try:
            payload = message.decode()
        except Exception as exc:
            self._on_decode_error(message, exc)
            return
        for event in payload if isinstance(payload, list) else [payload]:
            reason = validate.check_event(event)
            if reason is not None:
                self._malformed(reason, reprlib.repr(event))
                continue
            try:
                # Celery's own step: the Lamport clock, utcoffset and local_received; then the "*" handler.
                receiver.process(*receiver.event_from_message(event))
            except Exception as exc:  # checked above; anything left is still the message's fault
                self._malformed(validate.BAD_FIELD, f"{type(exc).__name__}: {exc}")

    def _on_decode_error(self, message: Any, exc: BaseException) -> None:
        # kombu wraps the decoder's own error in DecodeError: the RecursionError of a deep body is inside.
        if any(isinstance(e, RecursionError) for e in (exc, exc.__context__, exc.__cause__, *exc.args)):
            reason = validate.TOO_DEEP
        elif isinstance(exc, ContentDisallowed):
            reason = validate.CONTENT_TYPE
        else:
            reason = validate.UNDECODABLE
        self._malformed(reason, f"{getattr(message, 'content_type', None)}: {type(exc).__name__}")

    def _malformed(self, reason: str, detail: str) -> None:
        self.metrics.malformed.labels(reason).inc()
        now = time.monotonic()
        if now >= self._warned.get(reason, 0.0):
            self._warned[reason] = now + _WARN_EVERY
            log.warning("dropped a malformed message from the event exchange (%s): %s", reason, detail)

    def _maybe_enable_events(self, app: Any) -> None:
        if not self.settings.enable_task_events:
            return
        now = time.monotonic()
        if now < self._next_enable:
            return
        self._next_enable = now + self.settings.enable_events_interval
        try:
            app.control.enable_events()
        except Exception as exc:  # a failed broadcast is retried at the next interval
            log.warning("cannot broadcast enable_events: %s", exc)
