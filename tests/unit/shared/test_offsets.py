"""Coalesced offset commits (shared.offsets): only applied records, the newest offset per
partition, at most one commit per interval, the last one soon after, failures survived."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError

from shared.offsets import OffsetCommits


class RecordingConsumer(AIOKafkaConsumer):
    """Keeps the offsets it is asked to commit; `refuse` makes the broker refuse them."""

    def __init__(self, refuse: bool = False) -> None:  # no broker: nothing of the real one is started
        self.commits: list[dict[TopicPartition, int]] = []
        self.refuse = refuse

    def __del__(self) -> None:
        pass

    async def commit(self, offsets: Any = None) -> None:
        self.commits.append(dict(offsets))
        if self.refuse:
            raise CommitFailedError("the group rebalanced")


def records(partition: int, *offsets: int) -> list[Any]:
    return [SimpleNamespace(topic="t", partition=partition, offset=o) for o in offsets]


async def test_batches_within_the_interval_are_committed_together_and_soon() -> None:
    commits, consumer = OffsetCommits(interval_seconds=0.2), RecordingConsumer()
    await commits.applied(consumer, records(0, 1, 2))  # the first after a quiet spell goes at once
    await commits.applied(consumer, records(0, 3))
    await commits.applied(consumer, records(1, 7))
    assert consumer.commits == [{TopicPartition("t", 0): 3}]
    await asyncio.sleep(0.3)  # no more batches: the pending ones follow within the interval
    assert consumer.commits == [{TopicPartition("t", 0): 3}, {TopicPartition("t", 0): 4, TopicPartition("t", 1): 8}]


async def test_a_stopping_service_commits_what_is_pending() -> None:
    commits, consumer = OffsetCommits(interval_seconds=60), RecordingConsumer()
    await commits.applied(consumer, records(0, 1))
    await commits.applied(consumer, records(0, 2))
    await commits.close()
    assert consumer.commits == [{TopicPartition("t", 0): 2}, {TopicPartition("t", 0): 3}]


async def test_a_refused_commit_is_survived(caplog: pytest.LogCaptureFixture) -> None:
    commits, consumer = OffsetCommits(interval_seconds=0.2), RecordingConsumer(refuse=True)
    await commits.applied(consumer, records(2, 5))
    assert consumer.commits == [{TopicPartition("t", 2): 6}]
    assert "offset commit failed" in caplog.text
