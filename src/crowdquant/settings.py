"""One settings object for the whole platform, read from CROWDQUANT_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me"


class Settings(BaseSettings):
    """Where things live and how strict to be.

    `local` mode (the default) is for one machine and tests; any other mode refuses unsafe
    defaults such as the placeholder secret.
    """

    model_config = SettingsConfigDict(env_prefix="CROWDQUANT_", frozen=True)

    mode: Literal["local", "production"] = "local"
    home: Path = Path(".crowdquant")
    secret_key: str = PLACEHOLDER_SECRET

    @property
    def datasets_dir(self) -> Path:
        """Published dataset versions: what participants may download."""
        return self.home / "datasets"

    @property
    def operator_dir(self) -> Path:
        """The operator's secrets (keys, id maps, real names); never served."""
        return self.home / "operator"

    @property
    def keyfile(self) -> Path:
        return self.operator_dir / "keys.json"

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.mode != "local" and self.secret_key == PLACEHOLDER_SECRET:
            raise ValueError("CROWDQUANT_SECRET_KEY must be set outside local mode")
        return self
