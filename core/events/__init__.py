"""Event buses: "experiment X has news" between the scheduler, the API and the pages.

``memory.MemoryEventBus`` serves one process; ``redis.RedisEventBus`` (``PHOENIX_REDIS_URL``)
every process that shares the Redis server. Both implement ``core.domain.ports.EventBus``
and only *notify*: what happened is read from the database (the durable log), so a lost
notice costs a reader one poll interval, never an event.
"""
