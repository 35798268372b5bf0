"""Application settings: the only place configuration is read from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Anyone can read this value in the repository, so it is only acceptable while developing.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-change-me"


class Settings(BaseSettings):
    """Settings read from environment variables (and an optional .env file)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = Field(
        default="production", validation_alias="CXRLAB_ENV"
    )
    # A postgresql:// URL; unset means "start the embedded server under STORE_DIR".
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # The role the app and its workers act as, set at connection start: it reads and writes rows but owns
    # no table, so it cannot TRUNCATE, ALTER or disable the append-only triggers. Empty: the login user.
    db_app_role: str = Field(
        default="cxrlab_app", validation_alias="DB_APP_ROLE", pattern=r"^([a-z_][a-z0-9_]*)?$"
    )
    # The schema owner's URL, for migrations, when DATABASE_URL logs in as a role of the app's own.
    migration_database_url: str | None = Field(default=None, validation_alias="MIGRATION_DATABASE_URL")
    store_dir: Path = Field(default=Path("./var"), validation_alias="STORE_DIR")
    secret_key: str = Field(default=DEVELOPMENT_SECRET_KEY, validation_alias="SECRET_KEY")
    # Keys the pseudonyms of patient, study and instance ids from outside data (app/domain/identities.py).
    # Unset: derived from SECRET_KEY, so set it before the first real import if SECRET_KEY may change.
    identity_key: str | None = Field(default=None, min_length=16, validation_alias="IDENTITY_KEY")
    # A PACS to import from over DICOMweb (its QIDO-RS/WADO-RS root), and its credentials: HTTP basic with
    # a user name and password, or a bearer token. Kept here, never in the database.
    dicomweb_url: str | None = Field(default=None, validation_alias="DICOMWEB_URL")
    dicomweb_username: str | None = Field(default=None, validation_alias="DICOMWEB_USERNAME")
    dicomweb_password: SecretStr | None = Field(default=None, validation_alias="DICOMWEB_PASSWORD")
    dicomweb_token: SecretStr | None = Field(default=None, validation_alias="DICOMWEB_TOKEN")
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default=8000, validation_alias="PORT")
    # Database connections each process keeps open (as many more may open for a moment), and a web
    # process's worker threads (app/persistence/db.py). Postgres's max_connections must exceed the web
    # processes times 2 x this, plus the workers'.
    db_pool_size: int = Field(default=20, ge=1, le=500, validation_alias="DB_POOL_SIZE")
    # Web processes of `cxrlab serve`; 0 means one per CPU core.
    web_workers: int = Field(default=0, ge=0, validation_alias="WEB_WORKERS")
    # How long an idle keep-alive connection stays open. Readers look at a film for seconds to minutes
    # between requests; at uvicorn's default of 5 s the server closed most readers' connections between
    # cases, so each case opened a new one, and a request that meets a closing connection is reset. 75 s is
    # nginx's default, so a proxy in front closes first.
    web_keep_alive_s: int = Field(default=75, ge=1, le=3600, validation_alias="WEB_KEEP_ALIVE_S")
    # Cookies carry the Secure flag when the app is served over HTTPS.
    secure_cookies: bool = Field(default=False, validation_alias="SECURE_COOKIES")
    # Largest accepted upload (a zip or the sum of files), in bytes.
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, validation_alias="MAX_UPLOAD_BYTES")
    # Largest body of any other request (forms); keeps unauthenticated posts from buffering much.
    max_form_bytes: int = Field(default=1024 * 1024, validation_alias="MAX_FORM_BYTES")
    # Addresses whose X-Forwarded-For uvicorn trusts (a reverse proxy), so rate limits see real clients.
    forwarded_allow_ips: str = Field(default="127.0.0.1", validation_alias="FORWARDED_ALLOW_IPS")
    # Failed logins allowed per account (and 4x that per client address) in the window below.
    login_max_failures: int = Field(default=5, validation_alias="LOGIN_MAX_FAILURES")
    login_window_s: int = Field(default=900, validation_alias="LOGIN_WINDOW_S")
    # A session ends this long after sign-in however active it is, and after this long without a request
    # (OWASP ASVS 3.3.2: 12 hours, 30 minutes).
    session_lifetime_s: int = Field(default=12 * 3600, ge=60, validation_alias="SESSION_LIFETIME_S")
    session_idle_s: int = Field(default=30 * 60, ge=60, validation_alias="SESSION_IDLE_S")
    # How long an invitation link stays valid.
    invite_ttl_hours: int = Field(default=72, validation_alias="INVITE_TTL_HOURS")
    # A running job's worker writes a heartbeat this often; a run whose heartbeat is older than
    # RUN_STALL_AFTER_S is marked stalled (its worker died) and may be retried.
    run_heartbeat_s: float = Field(default=5.0, validation_alias="RUN_HEARTBEAT_S")
    run_stall_after_s: float = Field(default=60.0, validation_alias="RUN_STALL_AFTER_S")

    @field_validator("identity_key", "dicomweb_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_secret_length(self) -> Settings:
        if len(self.secret_key) < 16:
            raise ValueError("SECRET_KEY must be at least 16 characters long.")
        return self

    def require_secret(self) -> None:
        """Refuse to serve with the published default key outside development (it signs sessions)."""
        if self.environment != "development" and self.secret_key == DEVELOPMENT_SECRET_KEY:
            raise RuntimeError(
                "SECRET_KEY is still the development default; set SECRET_KEY to a long random value "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                "or set CXRLAB_ENV=development for local use."
            )

    @property
    def images_dir(self) -> Path:
        """Content-addressed store of rendered PNGs."""
        return self.store_dir / "images"

    @property
    def pgdata_dir(self) -> Path:
        """Data directory of the embedded Postgres server."""
        return self.store_dir / "pgdata"

    @property
    def runs_dir(self) -> Path:
        """One folder per run: its log, metrics, grids, checkpoints (shared by web and workers)."""
        return self.store_dir / "runs"

    @property
    def models_dir(self) -> Path:
        """Generator snapshots imported or trained here (bundled ones live in model_store/)."""
        return self.store_dir / "models"

    @property
    def tmp_dir(self) -> Path:
        """Scratch space for uploads being unpacked."""
        return self.store_dir / "tmp"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
