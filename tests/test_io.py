"""Reading inputs safely and writing outputs atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from hetplace.common.errors import InputError
from hetplace.common.io import atomic_write_text, load_mapping


def _problem(exc: pytest.ExceptionInfo[InputError]) -> str:
    assert len(exc.value.problems) == 1
    return exc.value.problems[0].message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "file is empty"),
        (b"# only a comment\n", "file is empty"),
        (b"a: [1,\n", "YAML syntax error at line 2"),
        (b"key: value\n  bad indent: 1\n", "YAML syntax error at line 2"),
        (b"- 1\n- 2\n", "top level must be a mapping, got list"),
        (b"just a string", "top level must be a mapping, got str"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary data"),
        (b"name: caf\xe9\n", "not UTF-8 text (byte 9)"),
        (b"1: one\n", "top-level keys must be strings"),
    ],
)
def test_load_mapping_rejects_bad_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "input.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as exc:
        load_mapping(path)
    assert exc.value.source == str(path)
    assert expected in _problem(exc)


def test_load_mapping_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_mapping(tmp_path / "nope.yaml")
    assert _problem(exc) == "file not found"
    with pytest.raises(InputError) as exc:
        load_mapping(tmp_path)
    assert "is a directory" in _problem(exc)


def test_load_mapping_accepts_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1, "b": [1, 2]}')
    assert load_mapping(path) == {"a": 1, "b": [1, 2]}


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "plan.json"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["plan.json"]


def test_atomic_write_failure_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("hetplace.common.io.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new content")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_input_error_message_names_file_and_field() -> None:
    err = InputError.single("s.yaml", "hardware.owned[0].device", "unknown device 'x'")
    assert str(err) == "s.yaml: hardware.owned[0].device: unknown device 'x'"
