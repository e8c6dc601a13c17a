"""The bus contract, run against every implementation available.

MemoryBus always runs; AmqpBus runs when ``NEFOS_TEST_AMQP_URL`` points at a RabbitMQ
(e.g. ``amqp://guest:guest@127.0.0.1:5672/``). Each test uses its own exchange and
queues, and removes them from the broker afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from nefos.core.bus import AmqpBus, MemoryBus, Message, Subscription, create_bus, topic_matches
from tests.broker import Broker

AMQP_URL = os.environ.get("NEFOS_TEST_AMQP_URL")
TIMEOUT = 5.0

needs_amqp = pytest.mark.skipif(
    not AMQP_URL, reason="NEFOS_TEST_AMQP_URL is not set; RabbitMQ tests skipped"
)

AnyBus = MemoryBus | AmqpBus


def unique(label: str) -> str:
    return f"nefos-test-{label}-{uuid.uuid4().hex[:12]}"


async def remove_from_broker(exchange: str, queues: list[str]) -> None:
    """Use a fresh connection: the test may have closed or broken its own bus."""
    assert AMQP_URL is not None
    cleaner = AmqpBus(AMQP_URL, exchange=exchange)
    await cleaner.start()
    try:
        for queue in queues:
            await cleaner.delete_queue(queue)
        await cleaner.delete_exchange()
    finally:
        await cleaner.close()


@pytest.fixture
def queue_names() -> list[str]:
    return []


@pytest.fixture
def new_queue(queue_names: list[str]) -> Callable[[str], str]:
    """Hand out unique queue names and remember them for teardown."""

    def make(label: str) -> str:
        name = unique(label)
        queue_names.append(name)
        return name

    return make


@pytest.fixture(params=["memory", pytest.param("amqp", marks=needs_amqp)])
async def bus(request: pytest.FixtureRequest, queue_names: list[str]) -> AsyncIterator[AnyBus]:
    if request.param == "memory":
        memory = MemoryBus()
        await memory.start()
        yield memory
        await memory.close()
        return
    assert AMQP_URL is not None
    exchange = unique("exchange")
    amqp = AmqpBus(AMQP_URL, exchange=exchange)
    await amqp.start()
    try:
        yield amqp
    finally:
        await amqp.close()
        await remove_from_broker(exchange, queue_names)


class Inbox:
    """A handler that records messages and lets a test wait, boundedly, for them."""

    def __init__(self, slow: Callable[[Message], float] | None = None) -> None:
        self.messages: list[Message] = []
        self.busy = 0
        self.most_busy = 0
        self._slow = slow
        self._changed = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        try:
            if self._slow is not None:
                await asyncio.sleep(self._slow(message))
            self.messages.append(message)
        finally:
            self.busy -= 1
        self._changed.set()

    async def wait_until(self, done: Callable[[list[Message]], bool]) -> list[Message]:
        async def watch() -> None:
            while not done(self.messages):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(watch(), TIMEOUT)
        return self.messages

    async def wait_for_count(self, count: int) -> list[Message]:
        return await self.wait_until(lambda messages: len(messages) >= count)

    async def wait_for_last(self, marker: Message) -> list[Message]:
        """Wait for a marker published last: with ordered delivery, all before it arrived."""
        return await self.wait_until(lambda messages: bool(messages) and messages[-1] == marker)


async def wait_for_dead_letters(bus: AnyBus, queue: str, count: int) -> list[Message]:
    """RabbitMQ routes a rejected message to ``<queue>-dl`` asynchronously, so poll."""
    taken: list[Message] = []

    async def poll() -> None:
        while len(taken) < count:
            taken.extend(await bus.dead_letters(queue))
            if len(taken) < count:
                await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), TIMEOUT)
    return taken


# --- routing -----------------------------------------------------------------------------

# Every case here was checked against a RabbitMQ topic exchange.
TOPIC_CASES = [
    ("vm.*", "vm.created", True),
    ("vm.*", "vm", False),
    ("vm.*", "vm.a.b", False),
    ("vm.#", "vm", True),
    ("vm.#", "vm.a.b", True),
    ("vm.#", "vmx.created", False),
    ("#", "", True),
    ("#", "a.b.c", True),
    ("*", "", False),
    ("*", "a", True),
    ("", "", True),
    ("", "a", False),
    ("#.a", "a", True),
    ("#.a", "x.y.a", True),
    ("#.a", "a.x", False),
    ("a.#.b", "a.b", True),
    ("a.#.b", "a.x.y.b", True),
    ("a.#.b", "a.x.y", False),
    ("a.*.b", "a.b", False),
    ("a.*.b", "a..b", True),
    ("#.b.#", "x.b.y", True),
    ("*.#", "", False),
    ("#.*", "a", True),
    ("a.#.*", "a", False),
    ("a.", "a.", True),
    ("a.", "a", False),
]


@pytest.mark.parametrize(("pattern", "routing_key", "expected"), TOPIC_CASES)
def test_topic_matches_like_rabbitmq(pattern: str, routing_key: str, expected: bool) -> None:
    assert topic_matches(pattern, routing_key) is expected


async def test_topic_routing_star_and_hash(bus: AnyBus, new_queue: Callable[[str], str]) -> None:
    one_word, any_words = Inbox(), Inbox()
    await bus.subscribe(new_queue("star"), ["vm.*"], one_word)
    await bus.subscribe(new_queue("hash"), ["vm.#"], any_words)

    for key in ["vm", "vm.created", "vm.a.b", "net.created", "vmx.created", "x.vm.created"]:
        await bus.publish(key, {"key": key})
    end = {"key": "vm.end"}
    await bus.publish("vm.end", end)

    assert await one_word.wait_for_last(end) == [{"key": "vm.created"}, end]
    assert await any_words.wait_for_last(end) == [
        {"key": "vm"},
        {"key": "vm.created"},
        {"key": "vm.a.b"},
        end,
    ]


async def test_fan_out_gives_each_queue_its_own_copy(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    seen: list[Message] = []
    meddled = asyncio.Event()

    async def meddle(message: Message) -> None:
        message["touched"] = True
        seen.append(message)
        meddled.set()

    second = Inbox()
    await bus.subscribe(new_queue("first"), ["disk.attached"], meddle)
    await bus.subscribe(new_queue("second"), ["disk.attached"], second)

    await bus.publish("disk.attached", {"disk": 7})

    assert await second.wait_for_count(1) == [{"disk": 7}]
    await asyncio.wait_for(meddled.wait(), TIMEOUT)
    assert seen == [{"disk": 7, "touched": True}]


# --- delivery ----------------------------------------------------------------------------


async def test_fifty_messages_arrive_in_order_one_at_a_time(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    # Earlier messages take longer, so a bus running handlers concurrently would reorder.
    inbox = Inbox(slow=lambda message: (49 - message["n"]) * 0.0002)
    await bus.subscribe(new_queue("order"), ["seq.#"], inbox)

    for n in range(50):
        await bus.publish("seq.item", {"n": n})

    messages = await inbox.wait_for_count(50)
    assert [message["n"] for message in messages] == list(range(50))
    assert inbox.most_busy == 1


async def test_message_published_before_subscribe_waits(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    queue = new_queue("early")
    await bus.declare(queue, ["image.#"])
    await bus.publish("image.ready", {"n": 1})
    await bus.publish("image.deleted", {"n": 2})

    inbox = Inbox()
    await bus.subscribe(queue, ["image.#"], inbox)

    assert await inbox.wait_for_count(2) == [{"n": 1}, {"n": 2}]


async def test_unbound_routing_key_is_dropped(bus: AnyBus, new_queue: Callable[[str], str]) -> None:
    queue = new_queue("dropped")
    await bus.publish("nobody.listens", {"n": 0})
    await bus.declare(queue, ["nobody.listens"])
    end = {"n": 1}
    await bus.publish("nobody.listens", end)

    inbox = Inbox()
    await bus.subscribe(queue, [], inbox)
    assert await inbox.wait_for_last(end) == [end]


async def test_raising_handler_dead_letters_and_later_messages_flow(
    bus: AnyBus, new_queue: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    queue = new_queue("poison")
    inbox = Inbox()

    async def handler(message: Message) -> None:
        if message.get("poison"):
            raise RuntimeError("cannot handle this")
        await inbox(message)

    await bus.subscribe(queue, ["job.#"], handler)
    with caplog.at_level(logging.ERROR, logger="nefos.bus"):
        await bus.publish("job.run", {"n": 1})
        await bus.publish("job.run", {"n": 2, "poison": True})
        await bus.publish("job.run", {"n": 3})
        assert await inbox.wait_for_last({"n": 3}) == [{"n": 1}, {"n": 3}]

    assert await wait_for_dead_letters(bus, queue, 1) == [{"n": 2, "poison": True}]
    assert await bus.dead_letters(queue) == []  # taking them empties the queue
    failures = [r for r in caplog.records if r.name == "nefos.bus" and r.exc_info]
    assert failures, "the handler failure should be logged with its traceback"
    assert isinstance(failures[0].exc_info[1], RuntimeError)  # type: ignore[index]


async def test_message_that_is_not_an_object_is_dead_lettered(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    queue = new_queue("shape")
    inbox = Inbox()
    await bus.subscribe(queue, ["odd.#"], inbox)

    await bus.publish("odd.list", [1, 2])  # type: ignore[arg-type]
    await bus.publish("odd.end", {"n": 1})

    assert await inbox.wait_for_last({"n": 1}) == [{"n": 1}]
    assert await wait_for_dead_letters(bus, queue, 1) == [{"_raw": "[1,2]"}]


async def test_dead_letters_of_unknown_queue_is_empty(bus: AnyBus) -> None:
    assert await bus.dead_letters(unique("never-declared")) == []


async def test_cancel_then_resubscribe_gets_messages_published_between(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    queue = new_queue("resume")
    before = Inbox()
    subscription = await bus.subscribe(queue, ["net.#"], before)
    await bus.publish("net.up", {"n": 1})
    await before.wait_for_count(1)

    await subscription.cancel()
    await bus.publish("net.down", {"n": 2})
    await bus.publish("net.up", {"n": 3})

    after = Inbox()
    await bus.subscribe(queue, ["net.#"], after)
    assert await after.wait_for_count(2) == [{"n": 2}, {"n": 3}]
    assert before.messages == [{"n": 1}]


async def test_cancel_during_handler_redelivers_the_message(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    queue = new_queue("interrupted")
    started = asyncio.Event()

    async def stuck(message: Message) -> None:
        started.set()
        await asyncio.Event().wait()

    subscription = await bus.subscribe(queue, ["slow.#"], stuck)
    await bus.publish("slow.job", {"n": 1})
    await bus.publish("slow.job", {"n": 2})
    await asyncio.wait_for(started.wait(), TIMEOUT)
    await asyncio.wait_for(subscription.cancel(), TIMEOUT)

    inbox = Inbox()
    await bus.subscribe(queue, ["slow.#"], inbox)
    assert await inbox.wait_for_count(2) == [{"n": 1}, {"n": 2}]
    assert await bus.dead_letters(queue) == []


async def test_cancel_from_inside_handler_settles_that_message(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    queue = new_queue("self-cancel")
    handled: list[Message] = []
    cancelled = asyncio.Event()
    subscription: Subscription | None = None

    async def once(message: Message) -> None:
        handled.append(message)
        assert subscription is not None
        await subscription.cancel()
        cancelled.set()

    subscription = await bus.subscribe(queue, ["once.#"], once)
    await bus.publish("once.a", {"n": 1})
    await bus.publish("once.b", {"n": 2})
    await asyncio.wait_for(cancelled.wait(), TIMEOUT)

    inbox = Inbox()
    await bus.subscribe(queue, ["once.#"], inbox)
    assert await inbox.wait_for_count(1) == [{"n": 2}]
    assert handled == [{"n": 1}]


# --- publishing --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [object(), {1, 2}, b"\xff"])
async def test_publish_of_unserializable_value_raises_type_error(
    bus: AnyBus, new_queue: Callable[[str], str], value: object
) -> None:
    queue = new_queue("bad")
    await bus.declare(queue, ["bad.#"])
    with pytest.raises(TypeError):
        await bus.publish("bad.value", {"value": value})

    end = {"n": 1}
    await bus.publish("bad.end", end)
    inbox = Inbox()
    await bus.subscribe(queue, [], inbox)
    assert await inbox.wait_for_last(end) == [end]


@pytest.mark.parametrize("make", [MemoryBus, lambda: AmqpBus("amqp://127.0.0.1:1/")])
async def test_use_before_start_raises(make: Callable[[], AnyBus]) -> None:
    unstarted = make()
    with pytest.raises(RuntimeError, match="not started"):
        await unstarted.publish("a", {})
    with pytest.raises(RuntimeError, match="not started"):
        await unstarted.declare("q", ["a"])


# --- RabbitMQ only -----------------------------------------------------------------------


@needs_amqp
async def test_amqp_message_survives_closing_the_bus() -> None:
    assert AMQP_URL is not None
    exchange, queue = unique("exchange"), unique("durable")
    try:
        first = AmqpBus(AMQP_URL, exchange=exchange)
        await first.start()
        await first.declare(queue, ["vol.#"])
        await first.publish("vol.created", {"volume": "v-1"})
        await first.close()

        second = AmqpBus(AMQP_URL, exchange=exchange)
        await second.start()
        try:
            inbox = Inbox()
            await second.subscribe(queue, ["vol.#"], inbox)
            assert await inbox.wait_for_count(1) == [{"volume": "v-1"}]
        finally:
            await second.close()
    finally:
        await remove_from_broker(exchange, [queue])


@needs_amqp
@pytest.mark.parametrize("bus", ["amqp"], indirect=True)
async def test_amqp_messages_are_persistent_json(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    # Persistence only shows across a broker restart, so check the flag on the wire.
    import aio_pika

    queue = new_queue("wire")
    await bus.declare(queue, ["wire.#"])
    await bus.publish("wire.check", {"ok": True})

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        message = await declared.get(no_ack=True, timeout=TIMEOUT)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.body == b'{"ok":true}'


@needs_amqp
@pytest.mark.parametrize("bus", ["amqp"], indirect=True)
async def test_amqp_invalid_json_body_is_dead_lettered_raw(
    bus: AnyBus, new_queue: Callable[[str], str]
) -> None:
    assert isinstance(bus, AmqpBus)
    import aio_pika

    queue = new_queue("raw")
    inbox = Inbox()
    await bus.subscribe(queue, ["raw.#"], inbox)
    # Another producer on the same broker need not speak JSON.
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(bus._exchange_name)
        await exchange.publish(aio_pika.Message(b"not json {"), routing_key="raw.text")
    await bus.publish("raw.end", {"n": 1})

    assert await inbox.wait_for_last({"n": 1}) == [{"n": 1}]
    assert await wait_for_dead_letters(bus, queue, 1) == [{"_raw": "not json {"}]


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", MemoryBus),
        ("amqp://guest:guest@127.0.0.1:5672/", AmqpBus),
        ("amqps://user:pw@rabbit.example/nefos", AmqpBus),
    ],
)
def test_create_bus_picks_by_scheme(url: str, kind: type) -> None:
    assert isinstance(create_bus(url), kind)


@pytest.mark.parametrize("url", ["redis://localhost", "", "rabbit"])
def test_create_bus_rejects_unknown_scheme(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported bus URL"):
        create_bus(url)


# --- RabbitMQ restarts (a private broker: the machine's is not ours to restart) ----------


async def _until(condition: Callable[[], bool], within: float) -> None:
    """Longer than TIMEOUT: a reconnect takes the broker's restart plus aio-pika's
    reconnect interval."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within} s")
        await asyncio.sleep(0.05)


async def _queue_state(url: str, queue: str) -> str:
    """What the broker holds for a queue, on a connection of its own: tells messages it
    lost from a consumer the client did not restore."""
    import aio_pika

    try:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            ok = declared.declaration_result
            return f"{ok.message_count} messages ready, {ok.consumer_count} consumers"
    except Exception as error:  # a diagnosis must not hide the failure it explains
        return f"unknown ({error!r})"


@pytest.mark.parametrize("crash", [False, True], ids=["stop", "crash"])
async def test_amqp_bus_rides_out_a_broker_restart(private_broker: Broker, crash: bool) -> None:
    """Every publish that returned is delivered after a restart (a clean stop, or a crash
    by SIGKILL): what waited in the queue, and what was published during the outage."""
    exchange, queue = unique("exchange"), unique("restart")
    # aio-pika retries every 5 s by default; 1 s keeps the test short.
    bus = AmqpBus(f"{private_broker.url}?reconnect_interval=1", exchange=exchange)
    await bus.start()
    # Slow enough that most messages still wait in the queue when the broker goes down.
    inbox = Inbox(slow=lambda message: 0.02)
    try:
        await bus.subscribe(queue, ["up.#"], inbox)
        confirmed: list[int] = []
        for n in range(50):
            await bus.publish("up.n", {"n": n})
            confirmed.append(n)

        restart = asyncio.create_task(asyncio.to_thread(private_broker.restart, crash))
        waiting_at_outage = len(confirmed) - len(inbox.messages)
        longest = 0.0

        async def publish_through_the_outage() -> None:
            nonlocal longest
            after_restart = 0
            while after_restart < 5:
                after_restart += restart.done()
                n = len(confirmed)
                begun = time.monotonic()
                await bus.publish("up.n", {"n": n})  # returns only once the broker holds it
                longest = max(longest, time.monotonic() - begun)
                confirmed.append(n)
                await asyncio.sleep(0.01)

        await asyncio.wait_for(publish_through_the_outage(), 90)
        await restart
        assert waiting_at_outage > 10  # queued, unconsumed, when the broker went down
        assert longest > 1.0  # a publish waited for the broker to come back
        try:
            await _until(lambda: set(confirmed) <= {m["n"] for m in inbox.messages}, 60)
        except TimeoutError:
            missing = sorted(set(confirmed) - {m["n"] for m in inbox.messages})
            state = await _queue_state(private_broker.url, queue)
            pytest.fail(f"never delivered: {missing}; broker's queue: {state}")
        after = len(inbox.messages)
        await bus.publish("up.n", {"n": -1})
        await _until(lambda: {"n": -1} in inbox.messages[after:], 10)
        assert await bus.dead_letters(queue) == []
    finally:
        await bus.close()
