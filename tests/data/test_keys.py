import stat
from pathlib import Path

import pytest

from crowdquant.data.keys import KeyfileError, OperatorKeys, load_or_create_keys


def test_keyfile_round_trip_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "op" / "keys.json"
    keys = load_or_create_keys(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_keys(path) == keys
    with pytest.raises(FileExistsError):
        OperatorKeys.generate().save(path)


def test_malformed_keyfile_is_named(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"master": "zz"}')
    with pytest.raises(KeyfileError, match="malformed"):
        OperatorKeys.load(path)


def test_derived_keys_differ_by_purpose() -> None:
    keys = OperatorKeys(bytes(range(32)))
    assert keys.derive("ids:round:1") != keys.derive("ids:round:2")
    assert keys.rng("a").integers(1 << 30) == keys.rng("a").integers(1 << 30)
