"""The PostgreSQL schema that holds celery_durable's tables."""

from __future__ import annotations

SCHEMA = "celery_durable"
