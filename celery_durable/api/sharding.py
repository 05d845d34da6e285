"""DBOS 3.4's ``SetShardKey``: celery_durable's system database is not sharded, so a
shard key cannot be honoured and the block refuses at once (``shard_key=None`` is
accepted by every operation that takes one)."""

from __future__ import annotations

from types import TracebackType

from celery_durable.error import DBOSException


class SetShardKey:
    """Would set the shard key of the workflows started in the block (DBOS 3.4).

    Raises:
        ValueError: an empty key (as DBOS).
        DBOSException: any other key: sharding is not supported by celery_durable.
    """

    def __init__(self, shard_key: str) -> None:
        if not shard_key:
            raise ValueError("shard_key must be a non-empty string")
        self.shard_key = shard_key
        raise DBOSException(
            f"SetShardKey({shard_key!r}): sharding is not supported by celery_durable (its "
            "system database is not sharded); start the workflow without SetShardKey"
        )

    def __enter__(self) -> SetShardKey:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None
