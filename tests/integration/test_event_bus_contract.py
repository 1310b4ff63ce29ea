"""One contract for every event bus: the in-process one and Redis pub/sub on a real redis-server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from core.domain.errors import TemporaryError
from core.domain.ports import EventBus, Notice
from core.events.memory import MemoryEventBus
from core.events.redis import RedisEventBus
from tests.conftest import ThrowawayRedis

#: Generous: a notice normally arrives in milliseconds; this only bounds a broken bus.
ARRIVES_S = 5.0


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> Iterator[EventBus]:
    made: EventBus = MemoryEventBus() if request.param == "memory" else RedisEventBus(
        request.getfixturevalue("redis_url"))
    try:
        yield made
    finally:
        made.close()


def _collect(sub: object, want: int) -> list[Notice]:
    got: list[Notice] = []
    for _ in range(20):
        got += sub.wait(ARRIVES_S / 20)  # type: ignore[attr-defined]
        if len(got) >= want:
            break
    return got


def test_a_subscriber_of_one_experiment_gets_its_notices_only(bus: EventBus) -> None:
    mine, all_of_them = bus.subscribe("exp-a"), bus.subscribe(None)
    try:
        bus.publish(Notice("exp-b", "state"))
        bus.publish(Notice("exp-a", "sample"))
        bus.publish(Notice("exp-a", "state"))
        assert _collect(mine, 2) == [Notice("exp-a", "sample"), Notice("exp-a", "state")]
        assert _collect(all_of_them, 3) == [Notice("exp-b", "state"), Notice("exp-a", "sample"),
                                            Notice("exp-a", "state")]
    finally:
        mine.close()
        all_of_them.close()


def test_wait_returns_nothing_when_nothing_was_published(bus: EventBus) -> None:
    sub = bus.subscribe("quiet")
    try:
        bus.publish(Notice("other", "state"))
        assert sub.wait(0.2) == []
    finally:
        sub.close()


def test_a_waiting_reader_wakes_up_on_a_notice_from_another_thread(bus: EventBus) -> None:
    sub = bus.subscribe("exp-t")
    got: list[Notice] = []
    reader = threading.Thread(target=lambda: got.extend(sub.wait(ARRIVES_S)))
    reader.start()
    bus.publish(Notice("exp-t", "state"))
    reader.join(ARRIVES_S + 1)
    sub.close()
    assert got == [Notice("exp-t", "state")]


def test_a_closed_subscription_gets_nothing_more(bus: EventBus) -> None:
    sub = bus.subscribe("exp-c")
    sub.close()
    bus.publish(Notice("exp-c", "state"))
    assert sub.wait(0.1) == []


def test_every_subscriber_gets_each_notice(bus: EventBus) -> None:
    subs = [bus.subscribe("exp-f") for _ in range(3)]
    try:
        bus.publish(Notice("exp-f", "state"))
        assert [_collect(s, 1) for s in subs] == [[Notice("exp-f", "state")]] * 3
    finally:
        for s in subs:
            s.close()


def test_ping_answers(bus: EventBus) -> None:
    bus.ping()


# ---- Redis going away: publishing never fails, subscribers come back by themselves ----------


def _restart(server: ThrowawayRedis) -> None:
    server.start()


def test_redis_down_publish_is_dropped_and_ping_says_why(private_redis: ThrowawayRedis,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bus = RedisEventBus(private_redis.url)
    private_redis.kill()
    tries: list[str] = []
    real_publish = bus._client.publish
    monkeypatch.setattr(bus._client, "publish", lambda *a: (tries.append(a[0]), real_publish(*a)))
    bus.publish(Notice("exp-x", "state"))  # no exception: a transition is never undone by this
    bus.publish(Notice("exp-x", "sample"))  # not even tried: Redis failed a moment ago
    assert tries == ["phoenix:events:exp-x"] and bus.dropped == 2
    with pytest.raises(TemporaryError, match="does not answer"):
        bus.ping()
    bus.close()


def test_publishing_resumes_once_the_pause_after_a_failure_is_over(private_redis: ThrowawayRedis,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import core.events.redis as redis_bus

    monkeypatch.setattr(redis_bus, "PUBLISH_PAUSE_S", 0.0)
    bus = RedisEventBus(private_redis.url)
    listener = bus.subscribe("exp-y")
    private_redis.kill()
    bus.publish(Notice("exp-y", "state"))
    _restart(private_redis)
    assert _wait_for_reconnected_notice(bus, listener, Notice("exp-y", "state")) == [Notice("exp-y", "state")]
    assert bus.published >= 1
    listener.close()
    bus.close()


def test_redis_subscriber_reconnects_after_a_restart(private_redis: ThrowawayRedis) -> None:
    bus = RedisEventBus(private_redis.url)
    sub = bus.subscribe("exp-r")
    private_redis.kill()
    assert sub.wait(0.5) == []  # down: nothing, on time, no exception
    _restart(private_redis)
    got = _wait_for_reconnected_notice(bus, sub, Notice("exp-r", "sample"))
    assert got == [Notice("exp-r", "sample")]
    assert bus.reconnects >= 1  # one listener per process reconnected; no new subscribe was needed
    sub.close()
    bus.close()


def _wait_for_reconnected_notice(bus: RedisEventBus, sub: object, notice: Notice) -> list[Notice]:
    # The subscriber reconnects on its own backoff; until it has, a publish reaches nobody.
    # Keep publishing until one arrives: what matters is that it does, without a new subscribe.
    wait: Callable[[float], list[Notice]] = sub.wait  # type: ignore[attr-defined]
    for _ in range(50):
        bus.publish(notice)
        got = wait(0.2)
        if got:
            return got[:1]
    return []


def test_subscribing_while_redis_is_down_works_once_it_is_back(private_redis: ThrowawayRedis) -> None:
    private_redis.kill()
    bus = RedisEventBus(private_redis.url)
    sub = bus.subscribe(None)
    assert sub.wait(0.3) == []
    _restart(private_redis)
    assert _wait_for_reconnected_notice(bus, sub, Notice("exp-late", "state")) == [Notice("exp-late", "state")]
    sub.close()
    bus.close()


def test_one_redis_connection_serves_every_subscriber_of_a_process(redis_url: str) -> None:
    import redis

    bus = RedisEventBus(redis_url)
    admin = redis.Redis.from_url(redis_url)
    before = len(admin.client_list(_type="pubsub"))
    subs = [bus.subscribe(f"exp-{i}") for i in range(20)] + [bus.subscribe(None)]
    try:
        assert len(admin.client_list(_type="pubsub")) == before + 1
        bus.publish(Notice("exp-7", "state"))
        assert _collect(subs[7], 1) == [Notice("exp-7", "state")] and subs[8].wait(0.1) == []
    finally:
        for s in subs:
            s.close()
        bus.close()
        admin.close()
