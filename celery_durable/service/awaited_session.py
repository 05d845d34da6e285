"""The session an ``AsyncSQLAlchemyDatasource`` transaction awaits.

DBOS hands an async transaction an ``AsyncSession``. Ours runs on the same synchronous
connection as every transaction (so its outcome commits with the writes, by the same
code), and this adapter lets code written for ``AsyncSession`` await it unchanged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


class AwaitedSession:
    """``AsyncSession``'s common methods over the transaction's ``Session``."""

    def __init__(self, session: Session) -> None:
        self.sync_session = session

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.execute(statement, *args, **kwargs)

    async def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalar(statement, *args, **kwargs)

    async def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalars(statement, *args, **kwargs)

    async def get(self, entity: Any, ident: Any, **kwargs: Any) -> Any:
        return self.sync_session.get(entity, ident, **kwargs)

    async def flush(self) -> None:
        self.sync_session.flush()

    async def refresh(self, instance: Any, *args: Any, **kwargs: Any) -> None:
        self.sync_session.refresh(instance, *args, **kwargs)

    async def merge(self, instance: Any, **kwargs: Any) -> Any:
        return self.sync_session.merge(instance, **kwargs)

    async def delete(self, instance: Any) -> None:
        self.sync_session.delete(instance)

    def add(self, instance: Any) -> None:
        self.sync_session.add(instance)

    def add_all(self, instances: Any) -> None:
        self.sync_session.add_all(instances)
