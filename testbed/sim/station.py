"""The processor-sharing station: a node's cores or one direction of a link, served exactly.

Egalitarian processor sharing is computed with *virtual time*: each of ``n`` jobs is served at
``r(n) = min(max_rate, capacity / n)``, so a job that arrives at virtual time ``V`` with work ``w`` leaves
when virtual time reaches ``V + w``. A busy station keeps one pending wake-up, rescheduled lazily: an
arrival only slows the others down, so the pending wake-up is never late for them (it is checked when it
fires); it is replaced only when the newcomer itself will leave first. No SimPy process or Resource per job.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

from testbed.sim.kernel import Environment, Wake, event_queue

__all__ = ["PSStation"]


class PSStation:
    """A shared server (node cores or link bandwidth) under egalitarian processor sharing, exactly.

    Work is in seconds at full speed for a node and in bytes for a link; capacity is in the same units per
    second (requests at full speed for a node, bytes/s for a link) and max_rate caps one job (1 for a
    node, the loss-limited TCP rate for a link). ``done(job, now_s)`` is called when a job's work is
    served; callers pass the current time to ``arrive`` (the hot path never reads the clock).
    """

    __slots__ = ("env", "name", "capacity", "max_rate", "n", "v", "t", "heap", "seq", "gen",
                 "busy", "work", "done", "cap_integral", "cap_since", "_fire_cb", "_events", "_ids")

    def __init__(self, env: Environment, name, capacity: float, max_rate: float, done: Callable[[Any], None]):
        self.env = env
        self.name = name
        self.capacity = capacity
        self.max_rate = max_rate
        self.n = 0
        self.v = 0.0  # virtual time: work each present job has received since the busy period began
        self.t = 0.0
        self.heap: list = []  # (virtual finish, arrival sequence, job)
        self.seq = 0
        self.gen = 0
        self._fire_cb = self._fire
        # Wake-ups are pushed inline (kernel.event_queue): a station arms one for most events of a run.
        self._events, self._ids = event_queue(env)
        self.busy = 0.0  # capacity-seconds used
        self.work = 0.0  # work submitted
        self.done = done
        self.cap_integral = 0.0
        self.cap_since = 0.0

    def jobs(self) -> list:
        """The jobs queued or in service, in no particular order."""
        return [entry[2] for entry in self.heap]

    def _advance(self, now: float) -> None:
        n = self.n
        if n:
            dt = now - self.t
            if dt > 0:
                total = n * self.max_rate
                if total > self.capacity:
                    total = self.capacity
                self.v += dt * total / n
                self.busy += dt * total
        self.t = now

    def arrive(self, job, work: float, now: float) -> None:
        """A job with ``work`` to serve joins at simulated time ``now`` (s), which must be the current time."""
        n = self.n
        self.seq += 1
        self.work += work
        if not n:  # idle: the job runs alone until something else happens
            self.t = now
            self.v = 0.0  # restart virtual time each busy period: keeps its precision for long runs
            self.heap.append((work, self.seq, job))
            self.n = 1
            # _schedule(now), inline: calling it here costs 5% of the simulator's instructions (callgrind)
            r = self.capacity if self.capacity < self.max_rate else self.max_rate
            wake = Wake()
            wake.callbacks = [self._fire_cb]
            wake.value = self.gen
            wake.at_s = t = now + work / r
            heappush(self._events, (t, 1, next(self._ids), wake))
            return
        dt = now - self.t
        if dt > 0:  # _advance, inline: the hot path
            total = n * self.max_rate
            if total > self.capacity:
                total = self.capacity
            self.v += dt * total / n
            self.busy += dt * total
        self.t = now
        finish = self.v + work
        heap = self.heap
        # A busy station always has one pending wake-up. It stays valid unless the newcomer will be the
        # first to leave: an arrival only slows the others down, so their wake-up can come early (it is
        # re-armed) but never late.
        stale = finish < heap[0][0]
        heappush(heap, (finish, self.seq, job))
        self.n = n + 1
        if stale:
            self.gen += 1
            self._schedule(now)

    def _schedule(self, now: float) -> None:
        r = self.capacity / self.n
        if r > self.max_rate:
            r = self.max_rate
        dt = (self.heap[0][0] - self.v) / r
        wake = Wake()
        wake.callbacks = [self._fire_cb]
        wake.value = self.gen
        wake.at_s = t = now + dt if dt > 0 else now
        heappush(self._events, (t, 1, next(self._ids), wake))

    def _fire(self, wake: Wake) -> None:
        if wake.value != self.gen:
            return  # superseded by a newer wake-up
        now = wake.at_s
        n = self.n
        dt = now - self.t
        total = n * self.max_rate
        if total > self.capacity:
            total = self.capacity
        if dt > 0:
            self.v += dt * total / n
            self.busy += dt * total
        self.t = now
        heap = self.heap
        # Jobs whose remaining work is under a nanosecond of service leave now (float round-off).
        limit = self.v + total / n * (1e-9 + now * 1e-15)
        if heap[0][0] > limit:
            self._schedule(now)  # woken early: an arrival slowed the head down
            return
        first = heappop(heap)[2]
        if heap and heap[0][0] <= limit:
            finished = [first]
            while heap and heap[0][0] <= limit:
                finished.append(heappop(heap)[2])
            self.n = n - len(finished)
            if heap:
                self._schedule(now)
            done = self.done
            for job in finished:
                done(job, now)
            return
        self.n = n - 1
        if heap:
            self._schedule(now)
        self.done(first, now)

    def set_capacity(self, capacity: float, max_rate: float) -> None:
        """Change the service rate from now on (a bandwidth or background-load change)."""
        now = self.env.now
        self._advance(now)
        self.cap_integral += (now - self.cap_since) * self.capacity
        self.cap_since = now
        self.capacity = capacity
        self.max_rate = max_rate
        if self.n:
            self.gen += 1  # the pending wake-up was computed for the old rate
            self._schedule(now)

    def capacity_s(self, now: float) -> float:
        """Capacity integrated over [0, now] (capacity-seconds offered)."""
        return self.cap_integral + (now - self.cap_since) * self.capacity

    def utilisation(self, now: float) -> float:
        self._advance(now)
        total = self.capacity_s(now)
        return self.busy / total if total > 0 else 0.0
