"""Output paths checked before any work, and output folders written as a whole.

Every command checks each output path it was given before it loads a catalog or solves anything, so a path that
cannot be written fails in a second with exit 2 (`InputError`: the path and the reason) instead of a traceback
after an hour-long sweep. Missing parent folders are fine: they are created when the output is written (README
"Outputs"). Folders (`report --out`, `whatif --out`) are built in a hidden sibling and renamed into place, so an
interrupted run leaves the previous folder or none, and a rerun leaves no stale files from the last one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hetplace.common.errors import InputError
from hetplace.common.io import umask_mode

JSON_OR_YAML = (".json", ".yaml", ".yml")
YAML = (".yaml", ".yml")
PNG = (".png",)


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists (what a write would have to create folders under)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _writable_folder(folder: Path) -> bool:
    """Can a file be created here? Tried, not guessed: os.access says yes to root on a read-only mount."""
    try:
        fd, name = tempfile.mkstemp(prefix=".hetplace-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def _check_parents(path: Path, option: str) -> None:
    """Every existing ancestor must be a folder, and the nearest one writable (missing ones get created)."""
    for ancestor in path.parents:
        if ancestor.exists() and not ancestor.is_dir():
            raise InputError.single(str(path), option, f"'{ancestor}' is a file, not a folder")
    parent = _nearest_existing(path.parent if str(path.parent) else Path("."))
    if not _writable_folder(parent):
        raise InputError.single(str(path), option, f"cannot write in folder '{parent}' (permission denied)")


def check_output_file(path: Path, option: str, suffixes: Iterable[str]) -> None:
    """A file output: an extension its writer produces, not a folder, under writable folders."""
    accepted = tuple(suffixes)
    if path.is_dir():
        raise InputError.single(str(path), option, "is a folder; give a file name")
    if path.suffix.lower() not in accepted:
        got = f"'{path.suffix}'" if path.suffix else "no extension"
        raise InputError.single(
            str(path),
            option,
            f"{got}: this writes {', '.join(accepted[:-1]) + ' or ' if accepted[1:] else ''}"
            f"{accepted[-1]} files; name the file accordingly",
        )
    _check_parents(path, option)


def check_output_folder(path: Path, option: str, own_files: Iterable[str]) -> None:
    """A folder output that will be replaced as a whole: absent, empty, or a previous output of the same command
    (it holds one of `own_files`) — never a file, the current folder, or a folder of other people's files."""
    if path.exists() and not path.is_dir():
        raise InputError.single(str(path), option, "is a file; give a folder (created if missing)")
    _check_parents(path, option)
    if not path.exists():
        return
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise InputError.single(str(path), option, "is the current folder (or holds it); give a new folder")
    if any(path.iterdir()) and not any((path / name).exists() for name in own_files):
        raise InputError.single(
            str(path),
            option,
            f"folder exists and holds other files (no {' or '.join(own_files)}), and it would be replaced as a "
            "whole; give a new or empty folder",
        )


@contextmanager
def staged_folder(path: Path) -> Iterator[Path]:
    """Yield a fresh hidden sibling of `path` to build the output in; on success it replaces `path`.

    On any exception (including Ctrl-C) the sibling is deleted and `path` is left as it was."""
    parent = path.parent if str(path.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield stage
        os.chmod(stage, umask_mode("dir"))
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / path.name)  # the swap: two renames in one folder
            try:
                os.replace(stage, path)
            except BaseException:
                os.replace(old / path.name, path)
                old.rmdir()
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, path)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
