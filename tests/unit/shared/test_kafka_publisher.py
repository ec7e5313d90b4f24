"""KafkaPublisher after a refused batch: the producer is replaced (aiokafka's stays out of step
with the broker's sequence numbers) and the messages go once more through the new one."""

import asyncio
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber, RecordTooLargeError

from shared.kafka import KafkaPublisher
from shared.outbox import MessageTooLarge, OutboundMessage
from shared.settings import Settings


class Client:
    """The producer's metadata client: which topics it tracks."""

    def __init__(self) -> None:
        self.topics: set[str] = set()

    def add_topic(self, topic: str) -> None:
        self.topics.add(topic)


class Producer:
    """Answers each send with `refusal` (None: acknowledged) and records what it was given."""

    def __init__(self, refusal: Exception | None) -> None:
        self.client = Client()
        self.refusal = refusal
        self.sent: list[bytes] = []
        self.stopped = False

    async def send(self, topic: str, *, value: bytes, **_: Any) -> asyncio.Future[None]:
        self.sent.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.refusal is None:
            done.set_result(None)
        else:
            done.set_exception(self.refusal)
        return done

    async def stop(self) -> None:
        self.stopped = True


async def publisher(*producers: Producer) -> KafkaPublisher:
    queue = list(producers)
    kafka = KafkaPublisher(Settings())

    async def new_producer() -> Producer:
        return queue.pop(0)

    kafka._new_producer = new_producer  # type: ignore[method-assign]
    await kafka.start()
    return kafka


MESSAGES = [OutboundMessage(topic="t", key="c1", value=b"one", headers={}), OutboundMessage("t", "c1", b"two", {})]


async def test_a_refused_batch_is_sent_again_through_a_new_producer() -> None:
    stale, fresh = Producer(OutOfOrderSequenceNumber()), Producer(None)
    kafka = await publisher(stale, fresh)
    await kafka.publish_many(MESSAGES)
    assert stale.stopped and fresh.sent == [b"one", b"two"] and not fresh.stopped
    assert stale.client.topics == fresh.client.topics == {"t"}  # tracked for metadata before each send


async def test_a_second_refusal_is_raised() -> None:
    kafka = await publisher(Producer(OutOfOrderSequenceNumber()), Producer(OutOfOrderSequenceNumber()), Producer(None))
    with pytest.raises(OutOfOrderSequenceNumber):
        await kafka.publish_many(MESSAGES)


async def test_a_batch_refused_for_size_is_not_sent_again_but_the_producer_is_replaced() -> None:
    stale, fresh = Producer(RecordTooLargeError()), Producer(None)
    kafka = await publisher(stale, fresh)
    with pytest.raises(MessageTooLarge):
        await kafka.publish_many(MESSAGES)
    assert stale.stopped and fresh.sent == []
    await kafka.publish_many(MESSAGES[:1])
    assert fresh.sent == [b"one"]
