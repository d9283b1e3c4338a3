"""The kernel's fast path against the SimPy it runs on: the private names it uses, and wake-ups in order.

When one of these fails after a SimPy upgrade, the fast path in testbed/sim/kernel.py must be re-checked
against the new SimPy (and the pin in pyproject.toml moved) before the simulator can be trusted.
"""

from __future__ import annotations

import inspect
import re

import simpy
from conftest import REPO

from testbed.sim import kernel

FIX = "re-check testbed/sim/kernel.py against this SimPy, then move the pin in pyproject.toml"


def test_simpy_is_the_tested_minor_version_and_the_pin_says_so():
    minor = ".".join(simpy.__version__.split(".")[:2])
    assert minor == kernel.SIMPY_TESTED, f"SimPy {simpy.__version__} is not the tested {kernel.SIMPY_TESTED}.x: {FIX}"
    pyproject = (REPO / "pyproject.toml").read_text()
    major, low = kernel.SIMPY_TESTED.split(".")
    pin = re.search(r'"simpy>=([\d.]+),<([\d.]+)"', pyproject)
    assert pin is not None, "pyproject.toml must pin simpy to one minor version, e.g. simpy>=4.1.1,<4.2"
    assert pin.group(1).startswith(kernel.SIMPY_TESTED) and pin.group(2) == f"{major}.{int(low) + 1}"


def test_the_environment_still_has_the_private_names_the_fast_path_uses():
    env = kernel.new_environment()
    for name, kind in (("_queue", list), ("_now", (int, float)), ("_eid", object)):
        assert hasattr(env, name), f"simpy.Environment has no {name} any more: {FIX}"
        assert isinstance(getattr(env, name), kind), f"simpy.Environment.{name} changed type: {FIX}"
    assert next(env._eid) + 1 == next(env._eid), f"Environment._eid is no longer a counter: {FIX}"
    source = inspect.getsource(simpy.Environment.step)
    for fragment in ("heappop(self._queue)", "event.callbacks", "event._ok"):
        assert fragment in source, f"Environment.step no longer uses {fragment}: {FIX}"
    schedule = inspect.getsource(simpy.Environment.schedule)
    assert "heappush(self._queue, (self._now + delay, priority, next(self._eid), event))" in schedule, FIX
    assert int(simpy.events.NORMAL) == 1, f"a Timeout's priority is no longer 1: {FIX}"


def test_the_event_protocol_is_callbacks_ok_and_value():
    env = kernel.new_environment()
    timeout = env.timeout(1.0, value="x")
    for name in ("callbacks", "_ok", "_value"):
        assert hasattr(timeout, name), f"a SimPy event has no {name} any more: {FIX}"
    assert timeout._ok is True and timeout._value == "x"


def test_pushed_wakes_fire_in_time_order_with_timeouts_and_ties_in_push_order():
    env = kernel.new_environment()
    seen = []

    def note(wake):
        seen.append((wake.value, env.now, wake.at_s))

    kernel.after(env, 2.0, "b", note)
    kernel.after(env, 1.0, "a", note)
    env.timeout(1.5).callbacks.append(lambda _ev: seen.append(("timeout", env.now, 1.5)))
    kernel.after(env, 2.0, "c", note)  # same time as "b": pushed later, fires later
    kernel.at(env, 3.0, lambda: kernel.after(env, 0.0, "d", note))
    env.run()
    assert seen == [("a", 1.0, 1.0), ("timeout", 1.5, 1.5), ("b", 2.0, 2.0), ("c", 2.0, 2.0), ("d", 3.0, 3.0)]


def test_every_calls_at_first_then_each_period_and_run_until_an_event_stops():
    env = kernel.new_environment()
    times = []
    kernel.every(env, 2.0, lambda: times.append(env.now), first_s=0.5)
    stop = kernel.new_event(env)
    kernel.at(env, 5.0, stop.succeed)
    env.run(until=stop)
    assert times == [0.5, 2.5, 4.5] and env.now == 5.0
