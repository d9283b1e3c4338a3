"""The simulation kernel: the only module that imports SimPy, and the fast path on SimPy's internals.

Simulation time is in seconds. Everything else in ``testbed.sim`` schedules through these functions:

- ``new_environment()``: a fresh ``simpy.Environment`` at t = 0;
- ``after(env, delay_s, value, callback)``: the hot path. ``callback(wake)`` runs ``delay_s`` from now with
  ``wake.value == value`` and ``wake.at_s`` the time it fires (so the hot path never reads the clock). Instead of building a ``simpy.events.Timeout`` (which checks its delay and goes
  through ``Environment.schedule``), it pushes a pre-triggered ``Wake`` straight onto the environment's
  event queue with the same ``(time, priority, id)`` key, so SimPy still orders and dispatches every event;
- ``event_queue(env)``: the queue and id counter ``after`` pushes onto, for the one caller hotter still (the
  processor-sharing station, which arms a wake-up for most events of a run and pushes the same entry
  inline, saving a call per event);
- ``every(env, period_s, fn, first_s)``, ``at(env, delay_s, fn)``, ``run_process(env, generator)``,
  ``new_event(env)``: thin wrappers over SimPy's public API for the rare events (policy timers, condition
  changes, the end of a run).

The fast path relies on SimPy internals: ``Environment._queue`` (a heap of ``(time, priority, id, event)``),
``Environment._now``, ``Environment._eid`` (an id counter), and the event protocol ``callbacks`` / ``_ok`` /
``_value`` read by ``Environment.step``. ``pyproject.toml`` pins SimPy to the tested minor version
(``SIMPY_TESTED``) and ``tests/test_sim_kernel.py`` fails with a clear message when any of them changes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from heapq import heappush
from typing import Any

import simpy

__all__ = ["SIMPY_TESTED", "Environment", "Wake", "after", "at", "event_queue", "every", "new_environment", "new_event", "run_process"]

SIMPY_TESTED = "4.1"  # the minor version whose internals the fast path was checked against
NORMAL_PRIORITY = 1  # simpy.events.NORMAL: what Environment.schedule gives a Timeout

Environment = simpy.Environment


class Wake:
    """A pre-triggered timeout as ``Environment.step`` sees it: ``callbacks`` and ``_ok`` (plus ours).

    ``step`` reads ``_value`` only for a failed event; a wake never fails, so its payload sits in plain
    slots that callbacks read without touching SimPy's private names: ``value`` and ``at_s``, the
    simulated time it fires at (equal to ``env.now`` in the callback).
    """

    __slots__ = ("callbacks", "value", "at_s")
    _ok = True


def new_environment() -> simpy.Environment:
    return simpy.Environment()


def after(env: simpy.Environment, delay_s: float, value: Any, callback: Callable[[Wake], None]) -> None:
    """Call ``callback(wake)`` ``delay_s`` seconds from now (``delay_s >= 0``); ``wake.value`` is ``value``."""
    wake = Wake()
    wake.callbacks = [callback]
    wake.value = value
    wake.at_s = t = env._now + delay_s
    heappush(env._queue, (t, 1, next(env._eid), wake))  # 1: NORMAL_PRIORITY (a literal: this is the hot path)


def event_queue(env: simpy.Environment) -> tuple[list, Iterator[int]]:
    """``(queue, ids)``: push ``(at_s, 1, next(ids), wake)`` onto ``queue`` with ``heappush``, exactly as
    ``after`` does (the same objects for the environment's whole life)."""
    return env._queue, env._eid


def at(env: simpy.Environment, delay_s: float, fn: Callable[[], None]) -> None:
    """Call ``fn()`` once, ``delay_s`` seconds from now (a SimPy timeout: rare events only)."""
    env.timeout(delay_s).callbacks.append(lambda _event: fn())


def every(env: simpy.Environment, period_s: float, fn: Callable[[], None], first_s: float | None = None) -> None:
    """Call ``fn()`` at ``first_s`` (default ``period_s``) and then every ``period_s`` seconds."""

    def timer():
        yield env.timeout(period_s if first_s is None else first_s)
        while True:
            fn()
            yield env.timeout(period_s)

    env.process(timer())


def run_process(env: simpy.Environment, generator: Generator) -> None:
    """Start a SimPy process; the generator yields ``env.timeout(...)`` events."""
    env.process(generator)


def new_event(env: simpy.Environment) -> simpy.Event:
    """An untriggered event (``succeed()`` it; ``env.run(until=event)`` stops there)."""
    return env.event()
