"""The SimPy model: processor-sharing nodes and links, arrivals, condition traces and policy hooks.

This is the only module that imports SimPy. Simulation time is in seconds.

Why it is fast without being approximate:

- A node or a link direction is one ``PSStation``: egalitarian processor sharing computed exactly with
  *virtual time* (each of ``n`` jobs is served at ``r(n) = min(max_rate, capacity / n)``, so a job that
  arrives at virtual time ``V`` with work ``w`` leaves when ``V`` reaches ``V + w``). One pending SimPy
  timeout per busy station, rescheduled lazily: an arrival only slows the others down, so the pending
  timeout is never late for them (it is checked when it fires); it is replaced only when the newcomer
  itself will leave first. No per-request SimPy process or Resource.
- Requests are plain lists moved by callbacks; a hop plan is compiled once per (device, split) into
  tuples of stations and constants; block times and inter-arrival gaps come from numpy in batches.
- Aggregates stream into a fixed-bin histogram and a bounded timeline; per-request rows only when asked.
"""

from __future__ import annotations

import math
import time
import zlib
from heapq import heappop, heappush

import numpy as np
import simpy

from testbed.errors import TestbedError
from testbed.sim.conditions import read_arrival_trace
from testbed.sim.stats import LatencyHistogram, Timeline
from testbed.sim.world import Split, World, mathis_cap_bytes_per_s

__all__ = ["PSStation", "Simulation"]

BATCH = 4096
_BYTES_PER_MBPS = 125_000


def stream(seed: int, key: str) -> np.random.Generator:
    """A generator for one named stream of one seed: the same (seed, key) always gives the same numbers."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(key.encode())])))


class _Buffer:
    """Numbers drawn from numpy BATCH at a time, handed out one by one as Python floats."""

    __slots__ = ("draw", "rng", "buf", "i")

    def __init__(self, draw, rng: np.random.Generator):
        self.draw = draw
        self.rng = rng
        self.buf: list[float] = []
        self.i = 0

    def take(self) -> float:
        i = self.i
        if i >= len(self.buf):
            self.buf = self.draw(self.rng, BATCH).tolist()
            i = 0
        self.i = i + 1
        return self.buf[i]


class _Wake:
    """A pre-triggered timeout as SimPy's kernel sees it (callbacks, _ok, _value).

    ``simpy.events.Timeout`` checks its delay and goes through ``Environment.schedule``; on the hot path
    the model pushes these straight onto the environment's queue with the same (time, priority, id)
    key, so SimPy still orders and dispatches every event.
    """

    __slots__ = ("callbacks", "_value")
    _ok = True


def _after(env: simpy.Environment, delay: float, value, callback) -> None:
    ev = _Wake()
    ev.callbacks = [callback]
    ev._value = value
    heappush(env._queue, (env._now + delay, 1, next(env._eid), ev))


class _Gaps:
    """Gaps of an arrival trace, then None."""

    __slots__ = ("gaps", "i")

    def __init__(self, gaps: list[float]):
        self.gaps = gaps
        self.i = 0

    def take(self) -> float | None:
        if self.i >= len(self.gaps):
            return None
        self.i += 1
        return self.gaps[self.i - 1]


class PSStation:
    """A shared server (node cores or link bandwidth) under egalitarian processor sharing, exactly.

    Work is in seconds at full speed for a node and in bytes for a link; capacity is in the same units per
    second (requests at full speed for a node, bytes/s for a link) and max_rate caps one job (1 for a
    node, the loss-limited TCP rate for a link).
    """

    __slots__ = ("env", "name", "capacity", "max_rate", "n", "v", "t", "heap", "seq", "gen",
                 "busy", "work", "done", "cap_integral", "cap_since", "_fire_cb")

    def __init__(self, env: simpy.Environment, name, capacity: float, max_rate: float, done):
        self.env = env
        self.name = name
        self.capacity = capacity
        self.max_rate = max_rate
        self.n = 0
        self.v = 0.0  # virtual time: work each present job has received since the busy period began
        self.t = 0.0
        self.heap: list = []
        self.seq = 0
        self.gen = 0
        self._fire_cb = self._fire
        self.busy = 0.0  # capacity-seconds used
        self.work = 0.0  # work submitted
        self.done = done
        self.cap_integral = 0.0
        self.cap_since = 0.0

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

    def arrive(self, job, work: float) -> None:
        env = self.env
        now = env._now
        n = self.n
        self.seq += 1
        self.work += work
        if not n:  # idle: the job runs alone until something else happens
            self.t = now
            self.v = 0.0  # restart virtual time each busy period: keeps its precision for long runs
            self.heap.append((work, self.seq, job))
            self.n = 1
            r = self.capacity if self.capacity < self.max_rate else self.max_rate
            ev = _Wake()
            ev.callbacks = [self._fire_cb]
            ev._value = self.gen
            heappush(env._queue, (now + work / r, 1, next(env._eid), ev))
            return
        dt = now - self.t
        if dt > 0:
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
            self._schedule()

    def _schedule(self) -> None:
        env = self.env
        r = self.capacity / self.n
        if r > self.max_rate:
            r = self.max_rate
        dt = (self.heap[0][0] - self.v) / r
        ev = _Wake()
        ev.callbacks = [self._fire_cb]
        ev._value = self.gen
        heappush(env._queue, (env._now + (dt if dt > 0 else 0.0), 1, next(env._eid), ev))

    def _fire(self, ev) -> None:
        if ev._value != self.gen:
            return  # superseded by a newer wake-up
        now = self.env._now
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
            self._schedule()  # woken early: an arrival slowed the head down
            return
        first = heappop(heap)[2]
        if heap and heap[0][0] <= limit:
            finished = [first]
            while heap and heap[0][0] <= limit:
                finished.append(heappop(heap)[2])
            self.n = n - len(finished)
            if heap:
                self._schedule()
            done = self.done
            for job in finished:
                done(job)
            return
        self.n = n - 1
        if heap:
            self._schedule()
        self.done(first)

    def set_capacity(self, capacity: float, max_rate: float) -> None:
        now = self.env._now
        self._advance(now)
        self.cap_integral += (now - self.cap_since) * self.capacity
        self.cap_since = now
        self.capacity = capacity
        self.max_rate = max_rate
        if self.n:
            self.gen += 1  # the pending wake-up was computed for the old rate
            self._schedule()

    def capacity_s(self, now: float) -> float:
        """Capacity integrated over [0, now] (capacity-seconds offered)."""
        return self.cap_integral + (now - self.cap_since) * self.capacity

    def utilisation(self, now: float) -> float:
        self._advance(now)
        total = self.capacity_s(now)
        return self.busy / total if total > 0 else 0.0


class Simulation:
    """One run: a world, one policy, one seed. Policies drive it through the methods in 'policy API'."""

    def __init__(self, world: World, spec, policy, seed: int, traces=(), record: bool | None = None):
        self.world = world
        self.spec = spec
        self.policy = policy
        self.seed = seed
        self.record = spec.records if record is None else record
        self.env = env = simpy.Environment()
        self.bandwidth_mbps: dict[tuple[str, str], float] = {}
        self.load: dict[str, float] = {n: 0.0 for n in world.nodes}
        # With records, per-stage times are kept too; without, the hot path does not even test for it.
        done = self._station_done_rec if self.record else self._station_done
        self.nodes: dict[str, PSStation] = {}
        self.links: dict[tuple[str, str], PSStation] = {}
        self.delay_s: dict[tuple[str, str], float] = {}
        self.jitter_ms: dict[tuple[str, str], float] = {}
        for name, nm in world.nodes.items():
            self.nodes[name] = PSStation(env, name, nm.capacity, 1.0, done)
        for lk in world.topology.links:
            for hop in ((lk.a, lk.b), (lk.b, lk.a)):
                mbps, rtt_ms = world.nominal_mbps(hop), world.rtt_ms(hop)
                self.bandwidth_mbps[hop] = mbps
                cap = mathis_cap_bytes_per_s(rtt_ms, lk.loss_pct)
                self.links[hop] = PSStation(env, hop, mbps * _BYTES_PER_MBPS, cap, done)
                self.delay_s[hop] = rtt_ms / 2000
                self.jitter_ms[hop] = lk.jitter_ms
        self.traces = list(traces)
        self._compiled: dict[tuple[str, Split], tuple] = {}
        self._stage_means: dict[tuple[str, Split], list] = {}
        self._started = False
        self.rho_peak = 0.0
        self.rho_peak_at: tuple[float, str] | None = None
        self.current: dict[str, tuple] = {}
        self.split: dict[str, Split] = {}
        self.split_log: list[tuple[float, str, str]] = []
        self.change_log: list[tuple[float, str, float]] = []
        self.repartitions = 0
        self.benchmarks = 0
        self.overhead_work_s = 0.0
        self.probe_bytes = 0.0
        # counters
        self.arrived = 0
        self.finished = 0
        self.in_flight = 0
        self.in_delay = 0  # jobs (requests) propagating on a link
        self.unstable_reason: str | None = None
        self.arrivals_done = False
        self.arrivals_end_s: float | None = None
        self.done = env.event()
        self._arrive_cb = self._arrive
        self._after_delay_cb = self._after_delay_rec if self.record else self._after_delay
        # aggregates
        self._bins = [0] * len(LatencyHistogram().counts)
        self._n = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._min = math.inf
        self._max = 0.0
        horizon = spec.duration_s or 600.0
        self.timeline = Timeline(max(horizon / 500, 1e-3))
        self.rec: list[tuple] = []

    # ------------------------------------------------------------------ policy API

    @property
    def now(self) -> float:
        return self.env.now

    def set_split(self, device: str, split: Split) -> None:
        """Use this split for the device's requests from now on (requests in flight keep theirs)."""
        old = self.split.get(device)
        if old == split:
            return
        if old is not None:
            self.repartitions += 1
        self.split[device] = split
        self.current[device] = self._compile(device, split)
        self.split_log.append((self.env.now, device, split.id))
        self._note_load()

    def call_every(self, period_s: float, fn, first_s: float | None = None) -> None:
        def proc():
            yield self.env.timeout(period_s if first_s is None else first_s)
            while True:
                fn()
                yield self.env.timeout(period_s)

        self.env.process(proc())

    def submit_work(self, node: str, work_s: float, on_done, overhead: bool = False) -> None:
        """Run work_s of full-speed work on a node (it shares the node with requests); on_done(elapsed_s)."""
        if overhead:
            self.overhead_work_s += work_s
        job = [-1, None, ((0, self.nodes[node], work_s, None),), 0, self.env.now, on_done, self.env.now, 0.0, 0.0, 0.0]
        self.nodes[node].arrive(job, work_s)

    def submit_transfer(self, hop: tuple[str, str], size_bytes: float, on_done) -> None:
        """Carry bytes over one directed link (sharing it with requests); on_done(serialisation_s)."""
        self.probe_bytes += size_bytes
        job = [-1, None, ((0, self.links[hop], size_bytes, None),), 0, self.env.now, on_done, self.env.now, 0.0, 0.0,
               0.0]
        self.links[hop].arrive(job, size_bytes)

    # ------------------------------------------------------------------ plans

    def _compile(self, device: str, split: Split) -> tuple:
        key = (device, split)
        if key in self._compiled:
            return self._compiled[key]
        plan = self.world.plan(device, split, reply=self.spec.reply)
        stages = []
        for i, st in enumerate(plan.stages):
            if st.kind == "compute":
                const, draw = self.world.service_sampler(st.node, st.first_block, st.last_block,
                                                         self.spec.service, self.spec.service_cv)
                buf = None if draw is None else _Buffer(draw, stream(self.seed, f"svc/{device}/{split.id}/{i}"))
                stages.append((0, self.nodes[st.node], const, buf))
            else:
                jitter = self.jitter_ms[st.link]
                jbuf = None
                if jitter > 0:
                    half = jitter / 2000
                    jbuf = _Buffer(lambda rng, n, h=half: rng.uniform(-h, h, n),
                                   stream(self.seed, f"jitter/{device}/{split.id}/{i}"))
                stages.append((1, self.links[st.link], st.size_bytes, self.delay_s[st.link], jbuf))
        compiled = (split.id, tuple(stages))
        self._compiled[key] = compiled
        means = []
        for st, spec_stage in zip(stages, plan.stages, strict=True):
            if st[0] == 1 or st[2] is not None:
                means.append((st[1], st[2]))
            else:
                mean = self.world.mean_work_s(spec_stage.node, spec_stage.first_block, spec_stage.last_block)
                means.append((st[1], mean))
        self._stage_means[key] = means
        return compiled

    def offered_load(self) -> dict:
        """Per station, the long-run busy fraction the current splits ask for (>= 1 cannot be served)."""
        rates = self._rates()
        demand: dict = {}
        for device, split in self.split.items():
            lam = rates.get(device, 0.0)
            for station, work in self._stage_means[(device, split)]:
                demand[station] = demand.get(station, 0.0) + lam * work
        out = {}
        for station, d in demand.items():
            cap = station.capacity
            out[station.name] = d / cap if cap > 0 else math.inf
        return out

    def _note_load(self) -> None:
        """Track the highest offered load seen (conditions and splits change it during a run)."""
        if not self._started:
            return
        rho = self.offered_load()
        if rho:
            worst = max(rho, key=rho.get)
            if rho[worst] > self.rho_peak:
                self.rho_peak = rho[worst]
                self.rho_peak_at = (self.env.now, worst if isinstance(worst, str) else ">".join(worst))

    def _rates(self) -> dict[str, float]:
        a = self.spec.arrivals
        if a.kind in ("poisson", "fixed"):
            return {d: a.rate_per_s for d in self._arrival_devices()}
        if a.kind == "trace":
            out = {}
            for d, times in self._trace_times.items():
                span = (times[-1] - times[0]) if len(times) > 1 else 0.0
                out[d] = (len(times) - 1) / span if span > 0 else 0.0
            return out
        return {}

    # ------------------------------------------------------------------ requests

    def _station_done(self, job) -> None:
        stages = job[2]
        i = job[3]
        st = stages[i]
        i += 1
        job[3] = i
        if st[0] == 1:  # a link: propagate before the next stage
            d = st[3]
            if st[4] is not None:
                d += st[4].take()
            if d > 0:
                self.in_delay += 1
                _after(self.env, d, job, self._after_delay_cb)
                return
        if i == len(stages):
            self._finish(job)
            return
        st = stages[i]
        w = st[2]
        if w is None:
            w = st[3].take()
        st[1].arrive(job, w)

    def _station_done_rec(self, job) -> None:
        now = self.env._now
        if job[2][job[3]][0] == 0:
            job[7] += now - job[6]
        else:
            job[8] += now - job[6]
        job[6] = now
        self._station_done(job)

    def _after_delay_rec(self, ev) -> None:
        job = ev._value
        now = self.env._now
        job[9] += now - job[6]
        job[6] = now
        self._after_delay(ev)

    def _after_delay(self, ev) -> None:
        self.in_delay -= 1
        self._start_stage(ev._value)

    def _start_stage(self, job) -> None:
        stages = job[2]
        i = job[3]
        if i == len(stages):
            self._finish(job)
            return
        st = stages[i]
        w = st[2]  # bytes for a link, constant work for a compute stage (None: draw it)
        if w is None:
            w = st[3].take()
        st[1].arrive(job, w)

    def _finish(self, job) -> None:
        now = self.env._now
        t0 = job[4]
        lat = now - t0
        if job[0] < 0:
            job[5](lat)
            return
        self.finished += 1
        self.in_flight -= 1
        if t0 >= self._warmup:
            self._n += 1
            self._sum += lat
            self._sumsq += lat * lat
            if lat < self._min:
                self._min = lat
            if lat > self._max:
                self._max = lat
            self._bins[LatencyHistogram.bin_of(lat)] += 1
            self.timeline.add(now, lat)
        if self.record:
            self.rec.append((job[0], job[1], job[5], t0, now, lat, job[7], job[8], job[9]))
        if self._closed and not self.arrivals_done:
            think = self._think_s
            if think > 0:
                _after(self.env, self._gap[job[1]].take(), job[1], self._arrive_cb)
            else:
                self._new_request(job[1])
        if self.arrivals_done and self.in_flight == 0 and not self.done.triggered:
            self.done.succeed()

    def _arrival_devices(self) -> list[str]:
        wanted = self.spec.arrivals.devices
        if not wanted:
            return self.world.devices
        for d in wanted:
            if d not in self.world.paths:
                raise TestbedError(f"arrivals.devices: {d!r} is not a device node with a resource; devices: "
                                   f"{', '.join(self.world.devices)}")
        return list(wanted)

    def _new_request(self, device: str) -> None:
        now = self.env._now
        self.arrived += 1
        self.in_flight += 1
        config_id, stages = self.current[device]
        job = [self.arrived, device, stages, 0, now, config_id]
        if self.record:  # stage start, compute, transfer and propagation seconds
            job += [now, 0.0, 0.0, 0.0]
        if self.in_flight > self._max_in_flight:
            self._unstable(f"more than {self._max_in_flight} requests in flight at t={now:.3f} s")
        limit = self.spec.requests
        if limit is not None and self.arrived >= limit:
            self._end_arrivals()
        self._start_stage(job)

    def _arrive(self, ev) -> None:
        if self.arrivals_done:
            return
        device = ev._value
        self._new_request(device)
        if self.arrivals_done or self._closed:
            return
        gap = self._gap[device].take()
        if gap is None:  # trace exhausted
            self._trace_left -= 1
            if self._trace_left == 0:
                self._end_arrivals()
            return
        nxt = self.env._now + gap
        if self.spec.duration_s is not None and nxt >= self.spec.duration_s:
            self._device_left -= 1
            if self._device_left == 0:
                self._end_arrivals()
            return
        _after(self.env, gap, device, self._arrive_cb)

    def _end_arrivals(self) -> None:
        if self.arrivals_done:
            return
        self.arrivals_done = True
        now = self.env.now
        self.arrivals_end_s = now if self.spec.duration_s is None else max(now, self.spec.duration_s)
        limit = self.spec.drain_limit_s or max(60.0, self.arrivals_end_s)

        def guard(_ev):
            if not self.done.triggered:
                self._unstable(f"{self.in_flight} requests still in flight {limit:g} s after arrivals ended")

        self.env.timeout(self.arrivals_end_s - now + limit).callbacks.append(guard)
        if self.in_flight == 0 and not self.done.triggered:
            self.done.succeed()

    def _unstable(self, reason: str) -> None:
        if self.unstable_reason is None:
            self.unstable_reason = reason
        self.arrivals_done = True
        if self.arrivals_end_s is None:
            self.arrivals_end_s = self.env.now
        if not self.done.triggered:
            self.done.succeed()

    def _setup_arrivals(self) -> None:
        a = self.spec.arrivals
        devices = self._arrival_devices()
        self._closed = a.kind == "closed"
        self._think_s = a.think_s
        self._gap: dict[str, _Buffer] = {}
        self._trace_times: dict[str, list[float]] = {}
        self._device_left = len(devices)
        self._trace_left = 0
        first: dict[str, float] = {}
        for d in devices:
            rng = stream(self.seed, f"arrivals/{d}")
            if a.kind == "poisson":
                mean = 1 / a.rate_per_s
                self._gap[d] = _Buffer(lambda r, n, m=mean: r.exponential(m, n), rng)
                first[d] = self._gap[d].take()
            elif a.kind == "fixed":
                gap = 1 / a.rate_per_s
                self._gap[d] = _Buffer(lambda r, n, g=gap: np.full(n, g), rng)
                first[d] = float(rng.uniform(0, gap))  # devices are not in lock step
            elif a.kind == "closed":
                self._gap[d] = _Buffer(lambda r, n, m=a.think_s: r.exponential(m, n) if m > 0 else np.zeros(n), rng)
        if a.kind == "trace":
            times = read_arrival_trace(a.trace_path, devices)
            for d, ts in times.items():
                if not ts:
                    continue
                self._trace_times[d] = ts
                self._gap[d] = _Gaps([b - x for x, b in zip(ts, ts[1:], strict=False)])
                first[d] = ts[0]
            self._trace_left = len(first)
            self._device_left = len(first)
            if not first:
                raise TestbedError(f"arrivals.path: trace {a.trace_path} has no arrivals for devices {devices}")
        if a.kind == "closed":
            for d in devices:
                for _ in range(a.concurrency):
                    self._new_request(d)
            if self.spec.duration_s is not None:
                self.env.timeout(self.spec.duration_s).callbacks.append(lambda _ev: self._end_arrivals())
            return
        for d, t in first.items():
            if self.spec.duration_s is not None and t >= self.spec.duration_s:
                self._device_left -= 1
                continue
            _after(self.env, t, d, self._arrive_cb)
        if self._device_left == 0:
            self._end_arrivals()

    # ------------------------------------------------------------------ conditions

    def _apply(self, trace, value: float) -> None:
        now = self.env.now
        s = trace.spec
        if s.target == "link":
            lk = self.world.topology.link(*s.link)
            for hop in ((lk.a, lk.b), (lk.b, lk.a)):
                self.bandwidth_mbps[hop] = value
                cap = mathis_cap_bytes_per_s(self.world.rtt_ms(hop), lk.loss_pct)
                self.links[hop].set_capacity(value * _BYTES_PER_MBPS, cap)
            self.change_log.append((now, f"{lk.a}-{lk.b} bandwidth_mbps", value))
        else:
            nm = self.world.nodes[s.node]
            self.load[s.node] = value
            self.nodes[s.node].set_capacity(nm.capacity * (1 - value), 1.0)
            self.change_log.append((now, f"{s.node} load", value))

    def _trace_process(self, trace, changes, first):
        env = self.env
        t, value = first
        while True:
            if t > env.now:
                yield env.timeout(t - env.now)
            self._apply(trace, value)
            self.policy.on_conditions(self)
            self._note_load()
            nxt = next(changes, None)
            if nxt is None:
                return
            t, value = nxt

    def _check_traces(self) -> None:
        for trace in self.traces:
            s = trace.spec
            if s.target == "link":
                if self.world.topology.link(*s.link) is None:
                    raise TestbedError(f"{s.where}.link: topology {self.world.topology.name} has no link {s.link[0]}-{s.link[1]}")
            elif s.node not in self.world.nodes:
                raise TestbedError(f"{s.where}.node: {s.node!r} is not a node with a resource")

    # ------------------------------------------------------------------ run

    def requests_in_stations(self) -> int:
        """Requests queued or in service at any node or link (for conservation checks)."""
        stations = list(self.nodes.values()) + list(self.links.values())
        return sum(1 for s in stations for entry in s.heap if entry[2][0] >= 0)

    def run(self, until_s: float | None = None) -> dict:
        """Run to the end (or to instability, or to until_s) and return raw figures for the runner."""
        self._warmup = self.spec.warmup_s
        self._max_in_flight = self.spec.max_in_flight
        self._check_traces()
        wall0 = time.perf_counter()
        # Conditions at t=0 apply before the policy's first decision.
        for i, trace in enumerate(self.traces):
            changes = trace.changes(stream(self.seed, f"trace/{i}"))
            nxt = next(changes, None)
            while nxt is not None and nxt[0] <= 0:
                self._apply(trace, nxt[1])
                nxt = next(changes, None)
            if nxt is not None:
                self.env.process(self._trace_process(trace, changes, nxt))
        self.policy.start(self)
        self._setup_arrivals()
        rho = self.offered_load()
        self._started = True
        self._note_load()
        if until_s is not None:
            if until_s > self.env.now:
                self.env.run(until=until_s)
        elif not self.done.triggered:
            self.env.run(until=self.done)
        wall_s = time.perf_counter() - wall0
        now = self.env.now
        hist = LatencyHistogram()
        hist.counts[:] = self._bins
        hist.n, hist.total_s, hist.total_sq = self._n, self._sum, self._sumsq
        hist.min_s, hist.max_s = self._min, self._max
        return {
            "wall_s": wall_s,
            "end_s": now,
            "arrivals_end_s": self.arrivals_end_s if self.arrivals_end_s is not None else now,
            "histogram": hist,
            "rho": rho,
            "rho_peak": self.rho_peak,
            "rho_peak_at": self.rho_peak_at,
            "node_utilisation": {n: s.utilisation(now) for n, s in self.nodes.items()},
            "link_utilisation": {f"{a}>{b}": s.utilisation(now) for (a, b), s in self.links.items()},
            "link_bytes": {f"{a}>{b}": s.work for (a, b), s in self.links.items()},
            "node_work_s": {n: s.work for n, s in self.nodes.items()},
            "node_capacity_s": {n: s.capacity_s(now) for n, s in self.nodes.items()},
        }
