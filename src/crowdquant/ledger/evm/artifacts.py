"""The contracts' compiled ABI and bytecode: compiled from `contracts/*.vy` with the pinned
Vyper, written to `build/<Name>.json`, and loaded from there (no compiler needed to deploy).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS = ("Token", "Tournament")
SOURCES = Path(__file__).parent / "contracts"
BUILD = Path(__file__).parent / "build"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    """The deployment bytecode, 0x-prefixed hex."""
    compiler: str
    source_sha256: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "compiler": self.compiler,
                "source_sha256": self.source_sha256,
                "abi": self.abi,
                "bytecode": self.bytecode,
            },
            indent=1,
            sort_keys=True,
        )


def compile_contract(name: str) -> Artifact:
    """`name`'s artifact, compiled from its source as it is now."""
    return _compile(name, (SOURCES / f"{name}.vy").read_text())


@cache
def _compile(name: str, source: str) -> Artifact:
    import vyper

    out = vyper.compile_code(source, contract_path=f"{name}.vy", output_formats=["abi", "bytecode"])
    return Artifact(
        name=name,
        abi=out["abi"],
        bytecode=out["bytecode"],
        compiler=f"vyper {vyper.__version__}",
        source_sha256=hashlib.sha256(source.encode()).hexdigest(),
    )


def load_artifact(name: str, build: Path = BUILD) -> Artifact:
    """`name`'s artifact as written in `build`."""
    data = json.loads((build / f"{name}.json").read_text())
    return Artifact(
        name=data["name"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        compiler=data["compiler"],
        source_sha256=data["source_sha256"],
    )


def write_artifacts(build: Path = BUILD) -> list[Path]:
    """Compile every contract and write its artifact into `build`; the paths written."""
    build.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACTS:
        path = build / f"{name}.json"
        path.write_text(compile_contract(name).to_json() + "\n")
        written.append(path)
    return written


def stale_artifacts(build: Path = BUILD) -> list[str]:
    """The contracts whose artifact in `build` is missing or differs from a fresh compile."""
    stale = []
    for name in CONTRACTS:
        path = build / f"{name}.json"
        if not path.exists() or path.read_text() != compile_contract(name).to_json() + "\n":
            stale.append(name)
    return stale
