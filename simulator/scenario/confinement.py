"""Which files a scenario may read: ``extends:`` stays inside the scenario's folder tree.

A scenario names other files in ``extends:``.  Read from a shared or downloaded file, an
absolute path or a ``../`` chain could reach any readable file of the account (``/etc/shadow``,
``~/.ssh/...``) and its reading errors would tell something about it.  So a base file must lie
in the folder of the scenario that was loaded (the top file of the chain) or below it, after
symlinks are resolved; anything else is refused unless the caller allows it explicitly
(``load_scenario(..., allow_outside=True)``, ``--allow-outside-extends`` on the command line).
Only regular files are read: a folder, a FIFO (which would block) or a device is refused by kind.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_ALLOW_OUTSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("allow_outside_extends", default=False)

ALLOWED_EXTENDS = ("a scenario file in this scenario's folder or a subfolder of it, relative to this file "
                   "(absolute paths and ../ out of the folder are refused; --allow-outside-extends, or "
                   "load_scenario(..., allow_outside=True), allows them)")
"""What ``extends:`` may name (the end of every refusal)."""


@contextlib.contextmanager
def outside_extends_allowed(allowed: bool = True) -> Iterator[None]:
    """Within the block, ``extends:`` may leave the scenario's folder tree (the CLI's ``--allow-outside-extends``)."""
    token = _ALLOW_OUTSIDE.set(allowed)
    try:
        yield
    finally:
        _ALLOW_OUTSIDE.reset(token)


def outside_allowed(explicit: bool | None) -> bool:
    """``explicit`` when given, else what the enclosing :func:`outside_extends_allowed` says (default: no)."""
    return _ALLOW_OUTSIDE.get() if explicit is None else explicit


def confinement_problem(extends: str, base: Path, root: Path) -> str | None:
    """Why ``extends`` (resolved to ``base``) leaves ``root``, or None when it stays inside."""
    if Path(extends).is_absolute() or extends.startswith("~"):
        return f"an absolute path is refused; allowed: {ALLOWED_EXTENDS}"
    if not base.is_relative_to(root):
        return f"leads out of the scenario's folder {root}; allowed: {ALLOWED_EXTENDS}"
    return None


def file_kind_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a scenario file (missing, a folder, not a regular file), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "file not found"
    except NotADirectoryError:
        return "file not found (a part of the path is a file, not a folder)"
    except OSError as exc:
        return f"cannot read file: {exc.strerror or type(exc).__name__}"
    return kind_problem(mode)


def kind_problem(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not a scenario file, or None for a regular file."""
    if stat.S_ISDIR(mode):
        return "is a directory, not a YAML file"
    if not stat.S_ISREG(mode):
        return ("is not a regular file (a device, FIFO or socket: it may block, or be endless and larger than "
                "any scenario); a scenario is a YAML text file")
    return None


def read_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``; ``ValueError(reason)`` when it is not a readable regular file.

    Opened without blocking and checked on the open descriptor, so a FIFO never hangs the reader
    and a file swapped after a check is still refused.
    """
    problem = file_kind_problem(path)
    if problem is not None:
        raise ValueError(problem)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValueError(f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    with os.fdopen(descriptor, "rb") as handle:
        problem = kind_problem(os.fstat(descriptor).st_mode)
        if problem is not None:
            raise ValueError(problem)
        try:
            return handle.read(limit)
        except OSError as exc:
            raise ValueError(f"cannot read file: {exc.strerror or type(exc).__name__}") from None
