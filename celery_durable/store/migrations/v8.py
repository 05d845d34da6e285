"""Schema version 8: the authenticated user's roles (DBOS's ``DBOSContextSetAuth`` and
``@DBOS.required_roles``).

``authenticated_user`` exists since version 1. ``authenticated_roles`` holds the roles
granted to that user as a JSON list (text, as DBOS stores it; NULL when there are none)
and ``assumed_role`` the role the code that started the workflow had assumed. The claim
does not return them: a workflow reads them once, when its code first asks (see
``WorkflowContext.identity``), so workflows that never ask pay nothing.

Shipped: never edit; append a new version instead.
"""

from __future__ import annotations

from celery_durable.store.migrations.schema import SCHEMA

V8 = f"""
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN authenticated_roles text;
ALTER TABLE {SCHEMA}.workflow_status ADD COLUMN assumed_role text;
"""
