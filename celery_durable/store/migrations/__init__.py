"""The versioned schemas of the system and application databases.

Each migration is applied once, in order, in one transaction that holds a
transaction-level advisory lock, so that any number of processes may migrate at once.
Never edit a released migration: append a new one.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA
from celery_durable.store.migrations.v1 import V1
from celery_durable.store.migrations.v2 import V2
from celery_durable.store.migrations.v3 import V3
from celery_durable.store.migrations.v4 import V4
from celery_durable.store.migrations.v5 import V5
from celery_durable.store.migrations.v6 import V6
from celery_durable.store.migrations.v7 import V7
from celery_durable.store.migrations.v8 import V8
from celery_durable.store.migrations.v9 import V9
from celery_durable.store.migrations.v10 import V10
from celery_durable.store.migrations.v11 import V11
from celery_durable.store.migrations.v12 import V12
from celery_durable.store.migrations.v13 import V13
from celery_durable.store.migrations.v14 import V14
from celery_durable.store.migrations.v15 import V15
from celery_durable.store.migrations.v16 import V16
from celery_durable.store.migrations.v17 import V17
from celery_durable.store.migrations.v18 import V18
from celery_durable.store.migrations.v19 import V19

# Serializes concurrent migrations (an arbitrary constant: "cd-migrate").
MIGRATION_LOCK_KEY = 0x63642D6D69677261

BOOTSTRAP = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version (
    version integer PRIMARY KEY,
    applied_at_epoch_ms bigint NOT NULL
);
"""

# (version, SQL) in order. A released version is never edited: append a new one.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, V1),
    (2, V2),
    (3, V3),
    (4, V4),
    (5, V5),
    (6, V6),
    (7, V7),
    (8, V8),
    (9, V9),
    (10, V10),
    (11, V11),
    (12, V12),
    (13, V13),
    (14, V14),
    (15, V15),
    (16, V16),
    (17, V17),
    (18, V18),
    (19, V19),
)

LATEST_VERSION = MIGRATIONS[-1][0]

# The application database holds one table of ours: the outcome of every
# @DBOS.transaction, written in the same database transaction as the user's writes.
# Idempotent DDL under a transaction-level advisory lock (the application database may
# be the system database, or another one).
APPLICATION_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.transaction_outputs (
    workflow_uuid text NOT NULL,
    function_id integer NOT NULL,
    function_name text NOT NULL,
    output text,
    error text,
    created_at_epoch_ms bigint NOT NULL,
    PRIMARY KEY (workflow_uuid, function_id)
);
"""

# The application database's own version table (it may be the system database: the
# names differ). Databases that predate it have APPLICATION_SCHEMA already: its
# idempotent DDL counts as version 1.
APPLICATION_BOOTSTRAP = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.application_schema_version (
    version integer PRIMARY KEY,
    applied_at_epoch_ms bigint NOT NULL
);
"""

# Version 2: transactions' outcomes are numbered from 1, as the system database's
# checkpoints (see v3).
_RENUMBER_TRANSACTIONS = f"""
UPDATE {SCHEMA}.transaction_outputs SET function_id = -function_id - 1;
UPDATE {SCHEMA}.transaction_outputs SET function_id = -function_id;
"""

APPLICATION_MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, APPLICATION_SCHEMA),
    (2, _RENUMBER_TRANSACTIONS),
)

__all__ = [
    "APPLICATION_BOOTSTRAP",
    "APPLICATION_MIGRATIONS",
    "BOOTSTRAP",
    "LATEST_VERSION",
    "MIGRATIONS",
    "MIGRATION_LOCK_KEY",
    "SCHEMA",
]
