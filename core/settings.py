"""Eventgate's settings: one Struct read once from EVENTGATE_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

PREFIX = "EVENTGATE_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every tunable of the API and the workers; environment names are EVENTGATE_<FIELD>."""

    database_url: str | None = None
    # Set when database_url goes through a transaction-mode pooler (PgBouncer): a direct
    # address for what needs a session of its own (LISTEN, migrations); prepared statements
    # are then off on pooled connections.
    direct_database_url: str | None = None
    # A read replica for the heavy reads (listings, the inbox, metrics' SQL), bypassed while
    # it lags more than read_max_lag_seconds; every write and single-resource read stays on
    # the primary.
    read_database_url: str | None = None
    read_max_lag_seconds: float = 5.0
    pool_min_size: int = 2
    pool_max_size: int = 20
    event_retention_days: int = 7
    partitions_ahead_days: int = 7
    key_cache_ttl_seconds: float = 60.0
    last_used_flush_seconds: float = 5.0
    # How late a presented-but-refused API key is answered (401): slows key guessing.
    auth_failure_delay_seconds: float = 0.5
    # Delivery batches each queue of a worker keeps in flight at once.
    worker_concurrency: int = 10
    delivery_retention_days: int = 30
    # At most one operational event per endpoint (dead letters) or source (rejections) per
    # this many seconds; each carries the count since the previous one.
    operational_notice_window_seconds: float = 900.0
    # A schedule with catch_up off skips a tick fired later than this after its time.
    schedule_grace_seconds: float = 300.0
    # How far ahead an event's deliver_at may be (its day is kept past retention until then).
    deliver_at_horizon_days: int = 30
    # Open GET /v1/events/stream connections one key may hold, over every API process.
    stream_max_per_key: int = 10
    # A stream sends a comment this often when idle, and its row is refreshed (at most 20 s).
    stream_heartbeat_seconds: float = 15.0
    # A stream whose client takes no data for this long is ended (it resumes by Last-Event-ID).
    stream_send_timeout_seconds: float = 30.0
    # Sandbox processes for JavaScript transformations per API or worker process (started on
    # first use); one tenant may hold all but one of them.
    transformation_processes: int = 2
    # CPU time and memory one transformation call may use.
    transformation_cpu_ms: int = 100
    transformation_memory_mb: int = 32
    # Delay before each try, counted from the previous failure (the first is the first try).
    delivery_retry_schedule: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    delivery_connect_timeout_seconds: float = 5.0
    delivery_timeout_seconds: float = 15.0
    # Well beyond the total timeout, or a slow delivery would be handed out twice.
    delivery_lease_seconds: float = 60.0
    delivery_batch_size: int = 100
    # A worker claims when notified and at least this often (due retries, expired leases, a
    # lost notification): the bound on how late any of those can be.
    delivery_poll_seconds: float = 1.0
    delivery_max_connections: int = 200
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 60.0
    endpoint_disable_after_seconds: float = 5 * 24 * 3600.0
    allow_private_destinations: bool = False
    # The message brokers tenants may publish to (comma-separated host or host:port); none,
    # the default, disables broker destinations. Brokers usually sit on private networks,
    # which the HTTP destination policy refuses: listing one is the operator's choice.
    broker_hosts: tuple[str, ...] = ()
    # API rate limits (tiers and overrides live in the database).
    rate_limits_enabled: bool = True
    # Requests without a valid key, per client address per minute (then 429).
    anonymous_per_minute: int = 60
    # Wrong secrets for one key prefix per minute from one address (then 429); also how many
    # refusals of one key per minute are written to its tenant's audit log.
    wrong_secrets_per_prefix_per_minute: int = 10
    # Proxies whose X-Forwarded-For names the client (comma-separated CIDRs; none by default).
    trusted_proxies: tuple[str, ...] = ()
    # Browser origins allowed to call the API (comma-separated); none by default.
    cors_origins: tuple[str, ...] = ()
    # Requests to one source's trigger URL per client address per minute (then 429).
    trigger_per_ip_per_minute: int = 1200
    # How long an Idempotency-Key's first answer is replayed (and a trigger's redelivery
    # id is remembered).
    idempotency_ttl_seconds: float = 24 * 3600.0
    # Logs: `json` lines or `console` (eventgate dev's default), and the level.
    log_format: str = "json"
    log_level: str = "info"
    # Payload and metadata fields never written to logs (comma-separated names).
    log_redact_fields: tuple[str, ...] = ()
    # One log line per answered request.
    access_log: bool = True
    # One request_logs row per answered authenticated request, kept this many days.
    request_logs_enabled: bool = True
    request_log_retention_days: int = 7
    # How long each maintenance task's runs are listed (their totals are kept for good).
    task_history_days: int = 14
    # Audit entries older than this are removed (a checkpoint keeps the chain verifiable).
    audit_retention_days: int = 365
    # When set, GET /metrics needs `Authorization: Bearer <this>`.
    metrics_token: str | None = None
    # How long /metrics reuses the figures it reads from SQL.
    metrics_cache_seconds: float = 5.0
    # A CLI worker serves its own /metrics on this port (0: off; the API's /metrics reads the
    # queue figures from SQL either way).
    worker_metrics_port: int = 0
    # How long tiers and overrides read from the database are reused.
    rate_limit_cache_seconds: float = 5.0
    # Keys stored secrets are encrypted under (base64, comma-separated; the first encrypts,
    # every one decrypts), or a file holding them. Never stored in the database.
    encryption_keys: tuple[str, ...] = ()
    encryption_keys_file: str | None = None
    # `eventgate serve` on SIGTERM: answer /health/ready 503 but go on serving this long (so a
    # load balancer stops sending requests), then stop accepting and finish what is in flight.
    shutdown_drain_seconds: float = 0.0
    # How long a web console sign-in lasts (a revoked key ends its sessions at once).
    console_session_seconds: float = 8 * 3600.0
    # Whether the console's sign-in page also takes an API key (for automation); people sign
    # in as console users either way.
    console_key_sign_in: bool = True
    # How long an invitation link to the console stays usable.
    console_invitation_hours: float = 72.0
    # Console sign-in attempts per client address per minute, and per account per hour from
    # browsers that never signed in to it (those that did keep a limit of their own).
    sign_in_per_address_per_minute: int = 20
    sign_in_per_account_per_hour: int = 30
    # Sign-in with OpenID Connect: the provider's issuer URL and this console's client there
    # (its redirect URI is <console address>/console/sign-in/oidc/callback). A person signs in
    # as the console user whose email the provider vouches for (email_verified).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    # The provider's name on the sign-in button.
    oidc_name: str = "single sign-on"

    def __repr__(self) -> str:
        # Settings hold credentials (the encryption keys, the database URL, the metrics token):
        # a log line or a traceback that prints them shows the fields that are safe to show.
        hidden = {
            "encryption_keys",
            "database_url",
            "direct_database_url",
            "read_database_url",
            "metrics_token",
            "oidc_client_secret",
        }
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self.__struct_fields__
            if name not in hidden
        )
        return f"Settings({shown}, ...)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from EVENTGATE_* variables (strings are coerced to the field types)."""
        environ = os.environ if environ is None else environ
        fields = set(cls.__struct_fields__)
        values: dict[str, object] = {
            name[len(PREFIX) :].lower(): value
            for name, value in environ.items()
            if name.startswith(PREFIX) and name[len(PREFIX) :].lower() in fields
        }
        # Lists are written comma-separated: EVENTGATE_DELIVERY_RETRY_SCHEDULE=0,5,300
        lists = (
            "delivery_retry_schedule",
            "trusted_proxies",
            "cors_origins",
            "broker_hosts",
            "log_redact_fields",
            "encryption_keys",
        )
        for name in lists:
            if isinstance(values.get(name), str):
                values[name] = [part.strip() for part in str(values[name]).split(",")]
        settings = msgspec.convert(values, cls, strict=False)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that contradict each other."""
        if not self.delivery_retry_schedule:
            raise SystemExit("EVENTGATE_DELIVERY_RETRY_SCHEDULE needs at least one entry")
        positive = (
            "worker_concurrency",
            "delivery_batch_size",
            "delivery_poll_seconds",
            "deliver_at_horizon_days",
            "stream_max_per_key",
            "stream_send_timeout_seconds",
            "transformation_processes",
            "transformation_cpu_ms",
            "transformation_memory_mb",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise SystemExit(f"EVENTGATE_{name.upper()} must be positive")
        if self.read_max_lag_seconds < 0:
            raise SystemExit("EVENTGATE_READ_MAX_LAG_SECONDS must not be negative")
        if self.shutdown_drain_seconds < 0:
            raise SystemExit("EVENTGATE_SHUTDOWN_DRAIN_SECONDS must not be negative")
        if not 0 < self.stream_heartbeat_seconds <= 20:
            raise SystemExit("EVENTGATE_STREAM_HEARTBEAT_SECONDS must be above 0 and at most 20")
        self._check_oidc()
        if self.delivery_lease_seconds <= self.delivery_timeout_seconds:
            raise SystemExit(
                "EVENTGATE_DELIVERY_LEASE_SECONDS must exceed EVENTGATE_DELIVERY_TIMEOUT_SECONDS"
            )

    def _check_oidc(self) -> None:
        """OpenID Connect needs its issuer and client together, the issuer an http(s) URL."""
        if self.oidc_issuer is None and self.oidc_client_id is None:
            return
        if not (self.oidc_issuer and self.oidc_client_id):
            raise SystemExit("EVENTGATE_OIDC_ISSUER and EVENTGATE_OIDC_CLIENT_ID go together")
        if not self.oidc_issuer.startswith(("https://", "http://")):
            raise SystemExit("EVENTGATE_OIDC_ISSUER must be an https:// URL")

    def require_database_url(self) -> str:
        """The database URL, or a clear error naming the variable to set."""
        if not self.database_url:
            raise SystemExit(
                "EVENTGATE_DATABASE_URL is not set, and no `eventgate dev` runs in this folder"
                " (it prints its database as `Database: postgresql://...`)"
            )
        return self.database_url

    @property
    def behind_pooler(self) -> bool:
        """Whether database_url goes through a transaction-mode pooler (no session state)."""
        return self.direct_database_url is not None

    def session_database_url(self) -> str:
        """The address for a connection that keeps a session (LISTEN, migrations)."""
        return self.direct_database_url or self.require_database_url()
