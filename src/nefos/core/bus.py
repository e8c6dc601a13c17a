"""The message bus: how backend events reach the dispatcher (the update path).

Two implementations share one small interface and one delivery contract, so callers
never know which one runs:

* ``memory://`` (default): asyncio queues inside this process.
* ``amqp://user:pass@host:port/vhost``: RabbitMQ through aio-pika.

The contract, modelled on AMQP topic exchanges:

* ``publish(routing_key, message)`` returns only once the bus holds the message (on
  RabbitMQ: a publisher confirm); messages are JSON objects, encoded with orjson, so a
  value orjson cannot encode raises ``TypeError`` at publish time on both buses. A
  message whose routing key matches no bound queue is dropped, as AMQP does.
* ``subscribe(queue, bindings, handler)`` declares a durable, named queue bound with
  topic patterns (``*`` matches one dot-separated word, ``#`` zero or more) and runs
  ``handler`` for each message, one at a time, in arrival order.
* A handler that returns acknowledges the message. A handler that raises, or a message
  that is not a JSON object, sends it to the queue's dead-letter queue ``<queue>-dl``,
  where an operator can inspect it; it is never redelivered in a loop.
* Messages published while no consumer runs wait in the queue, once the queue exists
  (``declare`` or an earlier ``subscribe``); bindings only ever grow.
* Delivery is at least once: a message whose handler is interrupted (``cancel``,
  ``close``, a lost connection) before it returned is delivered again, so handlers
  must be idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import orjson

log = logging.getLogger("nefos.bus")

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[None]]


class Subscription(Protocol):
    async def cancel(self) -> None:
        """Stop consuming; the queue and its waiting messages stay."""


class Bus(Protocol):
    async def start(self) -> None:
        """Connect; declare the exchange."""

    async def close(self) -> None:
        """Cancel subscriptions and disconnect."""

    async def publish(self, routing_key: str, message: Message) -> None:
        """Deliver to every bound queue; return once the bus holds it."""

    async def declare(self, queue: str, bindings: list[str]) -> None:
        """Create a durable queue (and its dead-letter queue) without consuming."""

    async def subscribe(self, queue: str, bindings: list[str], handler: Handler) -> Subscription:
        """Declare the queue and consume it with ``handler``."""

    async def dead_letters(self, queue: str) -> list[Message]:
        """Take and return what waits in ``<queue>-dl`` (for operators and tests)."""


# --- shared helpers ----------------------------------------------------------------------


def _dead_letter_queue(queue: str) -> str:
    return f"{queue}-dl"


def _encode(message: Message) -> bytes:
    # orjson raises JSONEncodeError, a TypeError, for values it cannot encode; both buses
    # encode up front so a bad message fails in the publisher, not in some consumer.
    return orjson.dumps(message)


def _decode(body: bytes) -> Message | None:
    """None means "not a JSON object": the consumer dead-letters it."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _decode_dead(body: bytes) -> Message:
    # An operator must see every dead letter, even one that never was a JSON object.
    message = _decode(body)
    if message is None:
        return {"_raw": body.decode("utf-8", errors="replace")}
    return message


def _interrupted() -> bool:
    """Tell a cancel of the consumer itself from a handler that raised CancelledError."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Match like a RabbitMQ topic exchange, so MemoryBus routes exactly as production.

    An empty key or pattern has no words at all, which is how RabbitMQ splits them.
    """
    words = routing_key.split(".") if routing_key else []
    # Positions in ``words`` that the pattern consumed so far can have reached.
    reached = {0}
    for part in pattern.split(".") if pattern else []:
        if part == "#":
            reached = set(range(min(reached), len(words) + 1))
        else:
            reached = {i + 1 for i in reached if i < len(words) and part in ("*", words[i])}
        if not reached:
            return False
    return len(words) in reached


# --- in-process bus ----------------------------------------------------------------------


class _MemoryQueue:
    """A named queue that outlives its consumers, as a durable AMQP queue does."""

    def __init__(self) -> None:
        self.bindings: set[str] = set()
        self.bodies: deque[bytes] = deque()
        self.dead: deque[bytes] = deque()
        self._arrived = asyncio.Event()

    def put(self, body: bytes) -> None:
        self.bodies.append(body)
        self._arrived.set()

    def put_back(self, body: bytes) -> None:
        # An interrupted delivery goes back to the head so order survives a cancel.
        self.bodies.appendleft(body)
        self._arrived.set()

    async def get(self) -> bytes:
        while not self.bodies:
            self._arrived.clear()
            await self._arrived.wait()
        return self.bodies.popleft()


class _MemorySubscription:
    def __init__(self, bus: MemoryBus, name: str, queue: _MemoryQueue, handler: Handler):
        self._bus = bus
        self._name = name
        self._queue = queue
        self._handler = handler
        self._stopping = False
        self._task = asyncio.create_task(self._consume(), name=f"nefos-bus-consume-{name}")

    async def _consume(self) -> None:
        while not self._stopping:
            body = await self._queue.get()
            try:
                await self._deliver(body)
            except asyncio.CancelledError:
                if _interrupted():
                    self._queue.put_back(body)
                    raise
                log.error("handler for queue %s was cancelled; dead-lettering", self._name)
                self._queue.dead.append(body)

    async def _deliver(self, body: bytes) -> None:
        message = _decode(body)
        if message is None:
            log.warning("queue %s: message is not a JSON object; dead-lettering", self._name)
            self._queue.dead.append(body)
            return
        try:
            await self._handler(message)
        except Exception:
            log.exception("handler for queue %s failed; dead-lettering", self._name)
            self._queue.dead.append(body)

    async def cancel(self) -> None:
        self._bus._subscriptions.discard(self)
        self._stopping = True
        if self._task is asyncio.current_task():
            return  # called from its own handler: settle this message, then stop
        self._task.cancel()
        # gather, not suppress(CancelledError): a cancel of our caller must still propagate.
        await asyncio.gather(self._task, return_exceptions=True)


class MemoryBus:
    """The bus for tests and single-process deployments; same contract as AmqpBus.

    Messages are stored as JSON bytes, so every consumer gets its own fresh copy and
    nothing that would not survive RabbitMQ survives here.
    """

    def __init__(self) -> None:
        self._queues: dict[str, _MemoryQueue] = {}
        self._subscriptions: set[_MemorySubscription] = set()
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.cancel()
        self._started = False

    def _require_started(self) -> None:
        # Fail like AmqpBus would, so a missing start() shows up in memory-only tests.
        if not self._started:
            raise RuntimeError("MemoryBus is not started; call start() first")

    def _declare(self, queue: str, bindings: list[str]) -> _MemoryQueue:
        self._require_started()
        memory_queue = self._queues.setdefault(queue, _MemoryQueue())
        memory_queue.bindings.update(bindings)
        return memory_queue

    async def publish(self, routing_key: str, message: Message) -> None:
        self._require_started()
        body = _encode(message)
        for memory_queue in self._queues.values():
            if any(topic_matches(pattern, routing_key) for pattern in memory_queue.bindings):
                memory_queue.put(body)

    async def declare(self, queue: str, bindings: list[str]) -> None:
        self._declare(queue, bindings)

    async def subscribe(self, queue: str, bindings: list[str], handler: Handler) -> Subscription:
        memory_queue = self._declare(queue, bindings)
        subscription = _MemorySubscription(self, queue, memory_queue, handler)
        self._subscriptions.add(subscription)
        return subscription

    async def dead_letters(self, queue: str) -> list[Message]:
        self._require_started()
        memory_queue = self._queues.get(queue)
        if memory_queue is None:
            return []
        taken = [_decode_dead(body) for body in memory_queue.dead]
        memory_queue.dead.clear()
        return taken

    async def delete_queue(self, queue: str) -> None:
        """Drop a queue, its dead letters and its bindings (mirrors AmqpBus.delete_queue)."""
        self._queues.pop(queue, None)


# --- RabbitMQ ----------------------------------------------------------------------------

# Raised when the channel or connection under a delivery is gone; RabbitMQ then requeues
# the message itself, so there is nothing left to settle. ChannelInvalidStateError is a
# RuntimeError, not an AMQPError, hence listed on its own.
_CHANNEL_GONE = (
    aio_pika.exceptions.AMQPError,
    aio_pika.exceptions.ChannelInvalidStateError,
    ConnectionError,
)


class _AmqpSubscription:
    """One consumer on its own channel, so prefetch=1 and cancel affect only this queue."""

    def __init__(
        self,
        bus: AmqpBus,
        channel: aio_pika.abc.AbstractChannel,
        queue: aio_pika.abc.AbstractQueue,
        handler: Handler,
    ) -> None:
        self._bus = bus
        self._channel = channel
        self._queue = queue
        self._handler = handler
        # aio-pika runs each delivery in a task of its own; after a reconnect the broker
        # may redeliver while an old task still runs, so serialise handlers here too.
        self._lock = asyncio.Lock()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._consumer_tag: str | None = None
        self._cancelled = False

    async def start(self) -> None:
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            async with self._lock:
                if self._cancelled:
                    return  # left unacked: closing the channel requeues it
                await self._process(message)
            if self._cancelled:
                # cancel() was called from this very handler and left the closing to us.
                await self._close_channel()
        finally:
            self._in_flight.discard(task)

    async def _process(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        name = self._queue.name
        payload = _decode(message.body)
        if payload is None:
            log.warning("queue %s: message is not a JSON object; dead-lettering", name)
            await self._settle(message, ok=False)
            return
        try:
            await self._handler(payload)
        except asyncio.CancelledError:
            if _interrupted():
                raise  # unacked: the broker requeues it when the channel closes
            log.error("handler for queue %s was cancelled; dead-lettering", name)
            await self._settle(message, ok=False)
        except Exception:
            log.exception("handler for queue %s failed; dead-lettering", name)
            await self._settle(message, ok=False)
        else:
            await self._settle(message, ok=True)

    async def _settle(self, message: aio_pika.abc.AbstractIncomingMessage, ok: bool) -> None:
        try:
            if ok:
                await message.ack()
            else:
                # requeue=False makes RabbitMQ route it through x-dead-letter-exchange.
                await message.reject(requeue=False)
        except _CHANNEL_GONE:
            log.warning(
                "queue %s: could not settle message; the broker will redeliver it",
                self._queue.name,
                exc_info=True,
            )

    async def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._bus._subscriptions.discard(self)
        if self._consumer_tag is not None and not self._channel.is_closed:
            # Bounded: during a reconnect the robust channel would wait for the broker, and
            # closing the channel below stops the deliveries anyway.
            with contextlib.suppress(TimeoutError, *_CHANNEL_GONE):
                await asyncio.wait_for(self._queue.cancel(self._consumer_tag), 5)
        current = asyncio.current_task()
        if current in self._in_flight:
            return  # called from its own handler: _on_message closes after settling
        interrupted = list(self._in_flight)
        for task in interrupted:
            task.cancel()
        await asyncio.gather(*interrupted, return_exceptions=True)
        await self._close_channel()

    async def _close_channel(self) -> None:
        # Closing the channel hands every unacked message back to the queue.
        with contextlib.suppress(*_CHANNEL_GONE):
            await self._channel.close()


class AmqpBus:
    """The bus on RabbitMQ, for deployments where backends and API run apart.

    Topology: a durable topic exchange ``exchange`` for events and a durable direct
    exchange ``<exchange>-dl`` that routes rejected messages, by the name of the queue
    that rejected them, to ``<queue>-dl``.
    """

    # How long publish waits for the robust connection to come back before giving up.
    RECOVERY_TIMEOUT = 30.0

    def __init__(self, url: str, exchange: str = "nefos") -> None:
        self._url = url
        self._exchange_name = exchange
        self._dead_letter_exchange_name = f"{exchange}-dl"
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractRobustChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._subscriptions: set[_AmqpSubscription] = set()

    @property
    def _connected(self) -> aio_pika.abc.AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("AmqpBus is not started; call start() first")
        return self._connection

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url)
        # The publishing channel keeps confirms on: publish returns only on Basic.Ack.
        self._channel = channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await channel.declare_exchange(
            self._dead_letter_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.cancel()
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._channel = None
        self._exchange = None

    async def publish(self, routing_key: str, message: Message) -> None:
        if self._channel is None or self._exchange is None:
            raise RuntimeError("AmqpBus is not started; call start() first")
        outgoing = aio_pika.Message(
            _encode(message),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            # Unroutable messages are dropped, as on MemoryBus; nobody is listening yet.
            await self._exchange.publish(outgoing, routing_key=routing_key, mandatory=False)
        except (aio_pika.exceptions.ChannelInvalidStateError, ConnectionError):
            # The robust connection is reconnecting: callers would otherwise each need a
            # retry loop. A confirm lost with the old connection may mean the broker got
            # it after all; the retry then duplicates it, within the at-least-once contract.
            log.warning("bus connection lost; waiting for it before publishing again")
            await asyncio.wait_for(self._channel.ready(), self.RECOVERY_TIMEOUT)
            await self._exchange.publish(outgoing, routing_key=routing_key, mandatory=False)

    async def _declare(
        self, channel: aio_pika.abc.AbstractChannel, queue: str, bindings: list[str]
    ) -> aio_pika.abc.AbstractQueue:
        # The dead-letter queue first, so nothing rejected early is dropped unrouted.
        dead = await channel.declare_queue(_dead_letter_queue(queue), durable=True)
        await dead.bind(self._dead_letter_exchange_name, routing_key=queue)
        declared = await channel.declare_queue(
            queue,
            durable=True,
            arguments={
                "x-dead-letter-exchange": self._dead_letter_exchange_name,
                "x-dead-letter-routing-key": queue,
            },
        )
        for pattern in bindings:
            await declared.bind(self._exchange_name, routing_key=pattern)
        return declared

    async def declare(self, queue: str, bindings: list[str]) -> None:
        # A short-lived channel: the broker keeps durable queues, so there is nothing for
        # the robust connection to restore, and a declare error cannot close a shared one.
        async with self._connected.channel(publisher_confirms=False) as channel:
            await self._declare(channel, queue, bindings)

    async def subscribe(self, queue: str, bindings: list[str], handler: Handler) -> Subscription:
        channel = await self._connected.channel(publisher_confirms=False)
        try:
            # prefetch=1: the next message comes only after this one is settled (ordering).
            await channel.set_qos(prefetch_count=1)
            declared = await self._declare(channel, queue, bindings)
            subscription = _AmqpSubscription(self, channel, declared, handler)
            await subscription.start()
        except BaseException:
            with contextlib.suppress(*_CHANNEL_GONE):
                await channel.close()
            raise
        self._subscriptions.add(subscription)
        return subscription

    async def dead_letters(self, queue: str) -> list[Message]:
        taken: list[Message] = []
        async with self._connected.channel(publisher_confirms=False) as channel:
            try:
                dead = await channel.declare_queue(_dead_letter_queue(queue), passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                return taken
            while (message := await dead.get(no_ack=False, fail=False)) is not None:
                taken.append(_decode_dead(message.body))
                await message.ack()
        return taken

    async def delete_queue(self, queue: str) -> None:
        """Remove a queue and its dead-letter queue, messages included (tests, operators)."""
        async with self._connected.channel(publisher_confirms=False) as channel:
            for name in (queue, _dead_letter_queue(queue)):
                await channel.queue_delete(name, if_unused=False, if_empty=False)

    async def delete_exchange(self) -> None:
        """Remove both exchanges of this bus (test teardown); bindings to them go too."""
        async with self._connected.channel(publisher_confirms=False) as channel:
            for name in (self._exchange_name, self._dead_letter_exchange_name):
                await channel.exchange_delete(name, if_unused=False)


def create_bus(url: str) -> Bus:
    """Pick the implementation from the configured URL, so callers stay bus-agnostic."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryBus()
    if scheme in ("amqp", "amqps"):
        return AmqpBus(url)
    raise ValueError(
        f"unsupported bus URL {url!r}: expected memory:// or amqp[s]://user:pass@host/vhost"
    )
