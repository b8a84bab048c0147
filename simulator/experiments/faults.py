"""The test hook that makes a task misbehave on purpose: ``INMAIL_SIM_TEST_FAULT`` (tests only)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from simulator.experiments.runner import TaskKey

T = TypeVar("T")

FAULT_ENV = "INMAIL_SIM_TEST_FAULT"
"""Test hook: ``ACTION:REPLICATION[:POLICY]`` items, comma separated (see :func:`inject_fault`)."""


def inject_fault(key: TaskKey, spec: str | None = None) -> None:
    """Misbehave on purpose when ``INMAIL_SIM_TEST_FAULT`` names this task (tests only).

    Items ``ACTION:REPLICATION[:POLICY]``, comma separated; ACTION is ``raise`` (a RuntimeError),
    ``exit`` (``os._exit(3)``: the process vanishes), ``kill`` (SIGKILL to itself) or ``hang``
    (sleep an hour, to be interrupted).  Without POLICY every policy's replication misbehaves.
    """
    for action, item in faults_for(key, spec):
        if action == "raise":
            raise RuntimeError(f"injected fault ({FAULT_ENV}={item})")
        if action == "exit":
            os._exit(3)
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "hang":
            time.sleep(3600)


def faults_for(key: TaskKey, spec: str | None = None) -> list[tuple[str, str]]:
    """The (action, item) of every ``INMAIL_SIM_TEST_FAULT`` item naming ``key``."""
    spec = os.environ.get(FAULT_ENV, "") if spec is None else spec
    found = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        action, _, rest = item.partition(":")
        index, _, policy = rest.partition(":")
        if index.strip().isdigit() and int(index) == key.replication and policy in ("", key.policy):
            found.append((action, item))
    return found


def call_task(key: TaskKey, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """What a worker runs: the fault hook, then ``fn(*args)``."""
    if os.environ.get(FAULT_ENV):
        inject_fault(key)
    return fn(*args)
