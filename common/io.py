"""Reading YAML/JSON inputs safely and writing outputs atomically.

Every failure becomes an `InputError` naming the file, so the CLI can print one line and exit 2
instead of a traceback — for missing files, directories, binary garbage, empty files and syntax errors.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hetplace.common.errors import InputError, InputProblem

MAX_INPUT_BYTES = 20 * 1024 * 1024
M = TypeVar("M", bound=BaseModel)


def read_text(path: Path) -> str:
    """Return the UTF-8 text of `path` or raise an InputError saying why it cannot be read."""
    src = str(path)
    if not path.exists():
        raise InputError.single(src, "", "file not found")
    if path.is_dir():
        raise InputError.single(src, "", "is a directory, expected a YAML or JSON file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError.single(src, "", f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError.single(src, "", f"file is {len(raw)} bytes, larger than {MAX_INPUT_BYTES}")
    if b"\x00" in raw:
        raise InputError.single(src, "", "binary data (NUL bytes), expected a YAML or JSON text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.single(src, "", f"not UTF-8 text (byte {exc.start})") from None


# libyaml's safe loader when PyYAML was built with it (the wheels are): the same documents and errors, ~8× faster
# to parse, which a sweep pays per point (every catalog and workflow file).
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML (or JSON, a YAML subset) file whose top level must be a mapping."""
    text = read_text(path)
    src = str(path)
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError.single(src, "", f"YAML syntax error{where}: {problem}") from None
    if data is None:
        raise InputError.single(src, "", "file is empty")
    if not isinstance(data, dict):
        raise InputError.single(src, "", f"top level must be a mapping, got {type(data).__name__}")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise InputError.single(src, "", f"top-level keys must be strings, got {bad_keys[0]!r}")
    return data


def format_loc(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as a dotted field path (`steps[2].model`)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_PATH_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.+)$", re.S)


def _user_loc(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[Any, ...]:
    """Drop location parts the user never wrote (discriminated-union tags such as `llm`).

    Walk the input along the location. At each mapping, the first string part that is not one of its keys, or
    that equals its `kind` value (our union discriminator), is the union tag and is left out — unless it is the
    final part of a "field required" error, where the absent key is the point.
    """
    out: list[Any] = []
    node = data
    tag_skipped_at: int | None = None
    for i, part in enumerate(loc):
        if (
            isinstance(node, dict)
            and isinstance(part, str)
            and tag_skipped_at != id(node)
            and (part not in node or node.get("kind") == part)
            and not (missing and i == len(loc) - 1)
        ):
            tag_skipped_at = id(node)
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def validation_error_to_input_error(source: str, exc: ValidationError, data: Any = None) -> InputError:
    """One InputProblem per pydantic error, with a field path as the user wrote it."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = _user_loc(tuple(err["loc"]), data, err["type"] == "missing")
        msg = err["msg"].removeprefix("Value error, ")
        if loc and loc[-1] == "[key]":  # a bad mapping key (e.g. an unknown dtype), not a bad value
            loc, msg = loc[:-1], f"invalid key: {msg}"
        # Cross-field validators put the precise path first ("steps[2].after[0]: unknown step ..."); lift it.
        match = _PATH_PREFIX.match(msg)
        path = format_loc(loc)
        if match:
            sub = match.group(1)
            path = f"{path}.{sub}" if path else sub
            msg = match.group(2)
        problems.append(InputProblem(path, msg))
    return InputError(source, problems)


def parse_model(model_cls: type[M], data: dict[str, Any], source: str) -> M:
    """Validate `data` into `model_cls`, turning pydantic errors into an InputError for `source`."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_input_error(source, exc, data) from None


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows; os.umask can only set-and-return)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_mode(kind: str = "file") -> int:
    """Mode a plain open()/mkdir() would give under the current umask: 0o666 / 0o777 without the umask's bits.

    tempfile creates 0o600 files and 0o700 folders; outputs are chmod-ed to this before the rename, so a shared
    report folder is as readable as any file the user creates."""
    return (0o777 if kind == "dir" else 0o666) & ~current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory and a rename, with the user's umask.

    A crash or a validation failure half-way never leaves a partial output file behind. Missing parent folders
    are created (README "Outputs").
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), umask_mode())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
