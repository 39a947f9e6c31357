"""The operator's secret key and the keyed functions derived from it.

One master key per tournament; every keyed step (ids, names, tie-breaks, mixing,
sub-sampling) uses its own key derived from it, so learning one reveals nothing of another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KEY_BYTES = 32


class KeyfileError(ValueError):
    """A keyfile is missing or malformed."""


@dataclass(frozen=True)
class OperatorKeys:
    master: bytes

    def __post_init__(self) -> None:
        if len(self.master) != KEY_BYTES:
            raise KeyfileError(f"the master key must be {KEY_BYTES} bytes, got {len(self.master)}")

    @classmethod
    def generate(cls) -> OperatorKeys:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load(cls, path: Path) -> OperatorKeys:
        try:
            payload = json.loads(path.read_text())
            return cls(bytes.fromhex(payload["master"]))
        except FileNotFoundError as exc:
            raise KeyfileError(f"keyfile not found: {path}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyfileError(f"keyfile {path} is malformed: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the keyfile readable by its owner only; never overwrite an existing one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"master": self.master.hex()}, out)

    def derive(self, purpose: str) -> bytes:
        return hmac.new(self.master, purpose.encode(), hashlib.sha256).digest()

    def rng(self, purpose: str) -> np.random.Generator:
        """A random generator seeded by a derived key: secret, but reproducible."""
        return np.random.default_rng(np.frombuffer(self.derive(purpose), dtype=np.uint32))


def load_or_create_keys(path: Path) -> OperatorKeys:
    if path.exists():
        return OperatorKeys.load(path)
    keys = OperatorKeys.generate()
    keys.save(path)
    return keys


def keyed_digests(key: bytes, labels: list[str]) -> np.ndarray:
    """A 128-bit keyed hash (BLAKE2b MAC) of each label, as an (n, 2) uint64 array."""
    out = bytearray()
    for label in labels:
        out += hashlib.blake2b(label.encode(), key=key, digest_size=16).digest()
    return np.frombuffer(bytes(out), dtype="<u8").reshape(-1, 2)
