"""One settings object for the whole platform, read from CROWDQUANT_* environment variables."""

from __future__ import annotations

import os
import secrets
from email.utils import parseaddr
from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me"
"""A secret that older setups copied from examples: never accepted where it matters."""
MIN_SECRET_LENGTH = 32
"""Characters a secret key needs to serve beyond this machine."""
SECRET_KEY_FILE = "secret_key"
DENIED_WEBHOOK_NETWORKS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)
"""Networks webhooks may not reach by default: this host, private and shared networks,
link-local, multicast and reserved addresses."""


class Settings(BaseSettings):
    """Where things live and how strict to be.

    `local` mode (the default) is for one machine and tests; any other mode refuses unsafe
    defaults such as the placeholder secret.
    """

    model_config = SettingsConfigDict(env_prefix="CROWDQUANT_", frozen=True)

    mode: Literal["local", "production"] = "local"
    home: Path = Path(".crowdquant")
    secret_key: str | None = None
    """Keys the signed URLs; unset means the random one kept in `home` (see `secret_key_of`)."""
    public_url: HttpUrl | None = None
    """Where participants reach the server (e.g. ``https://crowd.example``): signed URLs are
    built under it; unset means the address the server is bound to."""

    database_url: str | None = None
    """SQLAlchemy URL; unset means a SQLite file in `home` (PostgreSQL: postgresql://…)."""
    database_pool_size: int = Field(default=20, ge=1)
    """Connections each process keeps open to the database (as many again may open at peaks)."""

    # Files (datasets served to participants, their uploads): see crowdquant.storage.
    storage_backend: Literal["local", "s3"] = "local"
    storage_root: Path | None = None
    # Whether the local backend flushes each file to disk before it names it: off only for
    # a throwaway home (the simulator's), where a power cut loses nothing worth keeping.
    storage_fsync: bool = True
    """Root folder of the local backend; ``home / "files"`` when unset."""
    s3_endpoint_url: str | None = None
    """None means AWS itself; set it for MinIO, Ceph, etc. (e.g. ``http://minio:9000``)."""
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_access_key: str | None = None
    """With ``s3_secret_key``; both unset means boto3's own chain (env, profile, role)."""
    s3_secret_key: SecretStr | None = None
    s3_prefix: str = ""
    """A folder inside the bucket to keep every key under (e.g. ``crowdquant``)."""

    scheduler_lease_seconds: float = Field(default=30.0, gt=0)
    """How long the process running the scheduler holds it without renewing (wall time):
    another `serve` process takes over this long after the holder dies."""

    rate_limit_sign_in: str = "30/minute"
    """Sign-in attempts per client address and per login (the `limits` notation)."""
    rate_limit_sign_up: str = "10/hour"
    rate_limit_api_key: str = "20/hour"
    rate_limit_upload: str = "120/hour"
    rate_limit_diagnostics: str = "30/hour"
    sign_in_free_failures: int = 5
    """Failed sign-ins per login and per address before each further one starts a wait."""
    sign_in_first_delay_seconds: float = 2.0
    sign_in_max_delay_seconds: float = 900.0

    # Bounded input: every request body and GraphQL query has a ceiling (see http/body_limit.py
    # and api/graphql/limits.py); uploads have their own cap.
    max_request_bytes: int = Field(default=1024 * 1024, gt=0)
    """The largest request body other than an upload (GraphQL, REST JSON, page forms)."""
    graphql_max_tokens: int = Field(default=2000, gt=0)
    graphql_max_depth: int = Field(default=8, gt=0)
    graphql_max_cost: int = Field(default=500, gt=0)
    """Fields one GraphQL operation may select, aliases included."""

    # Validating uploads (tournament/validator.py): worker processes with their own limits.
    validation_workers: int = Field(default=2, ge=1)
    """Worker processes that decode and validate uploads and diagnostics files."""
    validation_memory_mb: int = Field(default=1024, gt=0)
    """Memory a worker may take to read one file, beyond its own."""
    validation_cpu_seconds: int = Field(default=20, gt=0)
    """CPU time a worker may spend on one file."""
    validation_timeout_seconds: float = Field(default=30.0, gt=0)
    """Wall-clock time a worker may spend on one file."""

    # Uploaded models (compute/sandbox.py, tournament/compute_jobs.py): who runs them, and
    # each run's limits inside its sandbox.
    compute_local_worker: bool = True
    """`serve` runs uploaded models' jobs itself; off when `crowdquant compute worker`
    processes elsewhere run them."""
    compute_cpus: int = Field(default=1, ge=1)
    """Threads the numeric libraries of a model may start."""
    compute_memory_mb: int = Field(default=4096, gt=0)
    """Address space a model's run may take."""
    compute_cpu_seconds: int = Field(default=600, gt=0)
    compute_timeout_seconds: float = Field(default=600.0, gt=0)
    """Wall-clock time a model's run may take."""
    compute_max_processes: int = Field(default=64, ge=1)
    compute_max_file_mb: int = Field(default=256, gt=0)
    """The largest file a model's run may write."""
    compute_scratch_mb: int = Field(default=512, gt=0)
    """The size of a run's private scratch directory."""
    compute_dask_scheduler: str | None = None
    """A Dask scheduler's address (``tcp://host:8786``): workers run jobs on its cluster."""
    compute_runtimes_root: Path | None = None
    """Where named runtimes are built (compute/runtime.py); ``home / "runtimes"`` when unset."""

    # Submission webhooks (tournament/webhooks.py): where the server may POST, and how hard
    # it tries.
    webhook_denied_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network(net) for net in DENIED_WEBHOOK_NETWORKS]
    )
    """Addresses a webhook may not reach (besides the server's own): by default loopback,
    private, shared, link-local, multicast and reserved networks."""
    webhook_allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    """Addresses a webhook may reach even inside a denied network (or the server's own)."""
    webhook_local_worker: bool = True
    """`serve` sends webhook deliveries itself; off when `crowdquant webhooks worker`
    processes elsewhere send them."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long one delivery attempt may take (connecting, sending and the answer)."""
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_seconds: float = Field(default=30.0, gt=0)
    """The wait after a failed first attempt, doubled after each next one."""

    # Upload retention (tournament/retention.py): files a round needs stay, and these.
    keep_uploads_per_model: int = Field(default=5, ge=0)
    """Each model's newest uploads kept beside those a round is scored by."""
    retention_files_per_sweep: int = Field(default=500, gt=0)
    """The most submission files one hourly sweep deletes (purged and orphaned, each)."""
    retention_scan_per_sweep: int = Field(default=1_000, gt=0)
    """The most uploads, and stored files, one hourly sweep looks at (each); the next sweep
    goes on from there, so a sweep's cost does not grow with the tournament's history."""

    ledger_backend: Literal["sql", "evm"] = "sql"
    """Where the books are kept (see crowdquant.ledger.backends): ``sql``, the database's;
    ``evm``, the database's with the token's supply on an EVM chain (the ``evm_*`` settings)."""

    # The token and the stakes on an EVM chain (crowdquant.ledger.evm): the node, the
    # contracts, and the operator's key (from a keystore file or this environment, never the
    # database).
    evm_rpc_url: str | None = None
    """The chain's JSON-RPC endpoint, e.g. ``http://127.0.0.1:8545``."""
    evm_chain_id: int | None = Field(default=None, gt=0)
    """The chain the node must be on (checked when connecting): refuses a wrong network."""
    evm_token_address: str | None = None
    evm_tournament_address: str | None = None
    evm_operator_keystore: Path | None = None
    """An encrypted JSON keystore holding the operator's key (with the password below)."""
    evm_operator_keystore_password: SecretStr | None = None
    evm_operator_key: SecretStr | None = None
    """The operator's private key itself (hex), where no keystore file is used."""
    evm_confirmations: int = Field(default=1, ge=1)
    """Blocks that must include a transaction (itself counted) before it counts as done."""
    evm_receipt_timeout_seconds: float = Field(default=120.0, gt=0)
    explorer_tx_url: str | None = None
    """A block explorer's page of a transaction, ``{hash}`` standing for its hash (e.g.
    ``https://etherscan.io/tx/{hash}``): the site links each stake's and payout's
    transaction there. Unset: hashes are shown without links."""

    # Outgoing mail (sign-up links): see crowdquant.mail.
    mail_backend: Literal["console", "smtp"] | None = None
    """``console`` logs each message; ``smtp`` sends it. Unset: console in local mode, smtp
    in any other."""
    mail_from: str | None = None
    """The sender of every message, e.g. ``crowdquant <noreply@crowd.example>``."""
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    """Upgrade the connection with STARTTLS before logging in or sending."""
    smtp_user: str | None = None
    """With ``smtp_password``; unset means the server takes mail without a login."""
    smtp_password: SecretStr | None = None

    @property
    def database(self) -> str:
        """The database to use: `database_url`, or the embedded SQLite file."""
        return self.database_url or f"sqlite:///{self.home / 'crowdquant.db'}"

    @property
    def storage_dir(self) -> Path:
        """Where the local storage backend keeps files."""
        return self.storage_root if self.storage_root is not None else self.home / "files"

    @property
    def compute_runtimes_dir(self) -> Path:
        """Where `crowdquant compute runtime build` puts named runtimes' environments."""
        if self.compute_runtimes_root is not None:
            return self.compute_runtimes_root
        return self.home / "runtimes"

    @property
    def datasets_dir(self) -> Path:
        """Published dataset versions: what participants may download."""
        return self.home / "datasets"

    @property
    def operator_dir(self) -> Path:
        """The operator's secrets (keys, id maps, real names); never served."""
        return self.home / "operator"

    @property
    def fund_reports_dir(self) -> Path:
        """The fund's backtest reports, one folder per dataset version (operator only)."""
        return self.home / "fund"

    @property
    def keyfile(self) -> Path:
        return self.operator_dir / "keys.json"

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.mode != "local" and self.secret_key in (None, PLACEHOLDER_SECRET):
            raise ValueError("CROWDQUANT_SECRET_KEY must be set outside local mode")
        return self

    @field_validator("explorer_tx_url")
    @classmethod
    def _an_explorer_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, _, rest = value.replace("{hash}", "", 1).partition("://")
        if "{hash}" not in value or scheme not in ("http", "https") or set("{}") & set(rest):
            raise ValueError(
                "CROWDQUANT_EXPLORER_TX_URL is an http(s) URL with {hash} once in it, such as "
                "https://etherscan.io/tx/{hash}"
            )
        return value

    @field_validator("mail_from")
    @classmethod
    def _a_sender_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _, address = parseaddr(value)
        local, at, domain = address.partition("@")
        if "\r" in value or "\n" in value or not (local and at and "." in domain):
            raise ValueError("CROWDQUANT_MAIL_FROM is an address such as noreply@crowd.example")
        return value

    @model_validator(mode="after")
    def _require_a_complete_s3_setup(self) -> Settings:
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("CROWDQUANT_S3_BUCKET must be set when CROWDQUANT_STORAGE_BACKEND=s3")
        if (self.s3_access_key is None) != (self.s3_secret_key is None):
            raise ValueError(
                "set both CROWDQUANT_S3_ACCESS_KEY and CROWDQUANT_S3_SECRET_KEY, or neither"
            )
        return self

    @model_validator(mode="after")
    def _require_a_complete_smtp_login(self) -> Settings:
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError(
                "set both CROWDQUANT_SMTP_USER and CROWDQUANT_SMTP_PASSWORD, or neither"
            )
        return self


def secret_key_of(settings: Settings) -> str:
    """`settings.secret_key`, or the random key kept in ``home/secret_key`` (mode 0600),
    made on first use."""
    if settings.secret_key is not None:
        return settings.secret_key
    path = settings.home / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    key = secrets.token_urlsafe(MIN_SECRET_LENGTH)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(key + "\n")
    return key


def weak_secret(secret: str) -> bool:
    """True for the placeholder or a secret shorter than `MIN_SECRET_LENGTH`."""
    return secret == PLACEHOLDER_SECRET or len(secret) < MIN_SECRET_LENGTH
