"""The simulated world in motion: requests moving through hop plans, condition changes and policy hooks.

Simulation time is in seconds. SimPy stays in ``kernel``; processor sharing in ``station``; random numbers
in ``streams``. Why it is fast without being approximate: every node and link direction is one exact
``PSStation`` with one pending wake-up; requests are slotted ``Job`` objects moved by callbacks (no SimPy
process per request); a hop plan is compiled once per (device, split) into ``Step`` objects; block times
and inter-arrival gaps come from numpy in batches; aggregates stream into a fixed-bin histogram and a
bounded timeline, and per-request ``RequestRecord`` rows are kept only when asked.

The primitive API (what a policy driver may use; nothing else of ``Simulation`` is public to policies):

- ``now`` (s), ``bandwidth_mbps`` (per directed link, the current value), ``load`` (per node, the current
  background load fraction): the conditions as they are;
- ``set_split(device, split)``: the device's requests use this split from now on;
- ``call_every(period_s, fn, first_s=None)``: a timer;
- ``submit_work(node, work_s, on_done, overhead=False)``: full-speed seconds of work sharing the node with
  requests, ``on_done(elapsed_s)``; with ``overhead`` it counts as benchmarking;
- ``submit_transfer(hop, size_bytes, on_done)``: bytes over one directed link, ``on_done(serialisation_s)``;
- the counters ``benchmarks`` (``recalibrations`` of them), ``repartitions`` and ``compile_work_s`` (a policy's
  driver adds to ``benchmarks``, ``recalibrations`` and ``compile_work_s``);
- and the hooks it implements: ``policy.start(sim)`` before the first arrival, ``policy.on_conditions(sim)``
  after every condition change.
"""

from __future__ import annotations

import math
import time
from heapq import heappush
from typing import NamedTuple

from scission.units import mbps_to_bytes_per_s
from testbed.errors import TestbedError
from testbed.sim import kernel
from testbed.sim.arrivals import arrival_streams
from testbed.sim.kernel import Wake, after
from testbed.sim.station import PSStation
from testbed.sim.stats import LatencyHistogram, Timeline
from testbed.sim.streams import Buffer, stream
from testbed.sim.world import Split, World, mathis_cap_bytes_per_s

__all__ = ["Job", "RequestRecord", "Simulation", "Step"]


_bin_of = LatencyHistogram.bin_of


class RequestRecord(NamedTuple):
    """One finished request (kept with records on); times in seconds of simulated time."""

    request: int
    device: str
    config: str
    arrival_s: float
    finish_s: float
    latency_s: float
    compute_s: float
    transfer_s: float
    propagation_s: float


class Step:
    """One compiled stage of a hop plan: work on a node's station, or bytes then propagation on a link's.

    ``work`` is full-speed seconds (None: draw each request's from ``draw``) or bytes; ``delay_s`` is the
    one-way propagation of a link, ``jitter`` its spread (a Buffer of seconds, or None).
    """

    __slots__ = ("is_link", "station", "work", "draw", "delay_s", "jitter")

    def __init__(self, is_link: bool, station: PSStation, work: float | None, draw: Buffer | None = None,
                 delay_s: float = 0.0, jitter: Buffer | None = None):
        self.is_link = is_link
        self.station = station
        self.work = work
        self.draw = draw
        self.delay_s = delay_s
        self.jitter = jitter


class Job:
    """A request (``request >= 1``) or a policy's probe/benchmark (``request == -1``, with ``on_done``).

    ``next`` indexes the step to run next. With records on, ``start_records`` adds ``mark_s`` (when the
    current step began) and the compute, transfer and propagation sums; without, they are never set
    (the hot path does not pay for them).
    """

    __slots__ = ("request", "device", "steps", "next", "arrival_s", "config", "on_done", "mark_s",
                 "compute_s", "transfer_s", "propagation_s")

    def __init__(self, request: int, device: str | None, steps: tuple[Step, ...], arrival_s: float,
                 config: str | None):
        self.request = request
        self.device = device
        self.steps = steps
        self.next = 0
        self.arrival_s = arrival_s
        self.config = config

    def start_records(self) -> None:
        self.mark_s = self.arrival_s
        self.compute_s = 0.0
        self.transfer_s = 0.0
        self.propagation_s = 0.0


class Simulation:
    """One run: a world, one policy, one seed. Policies drive it through the primitive API above."""

    def __init__(self, world: World, spec, policy, seed: int, traces=(), record: bool | None = None):
        self.world = world
        self.spec = spec
        self.policy = policy
        self.seed = seed
        self.record = spec.records if record is None else record
        self.env = kernel.new_environment()
        self.bandwidth_mbps: dict[tuple[str, str], float] = {}
        self.load: dict[str, float] = {n: 0.0 for n in world.nodes}
        self._build_stations()
        self.traces = list(traces)
        self._compiled: dict[tuple[str, Split], tuple[str, tuple[Step, ...]]] = {}
        self._stage_means: dict[tuple[str, Split], list] = {}
        self._started = False
        self._streams = None
        self._devices: list[str] = []
        self.rho_peak = 0.0
        self.rho_peak_at: tuple[float, str] | None = None
        self.current: dict[str, tuple[str, tuple[Step, ...]]] = {}
        self.split: dict[str, Split] = {}
        self.split_log: list[tuple[float, str, str]] = []
        self.change_log: list[tuple[float, str, float]] = []
        self.repartitions = 0
        self.benchmarks = 0
        self.recalibrations = 0  # of the benchmark rounds, those that were recalibrations
        self.overhead_work_s = 0.0
        self.compile_work_s = 0.0  # of the overhead, compiling new block ranges on a switch
        self.probe_bytes = 0.0
        self.arrived = 0
        self.finished = 0
        self.in_flight = 0
        self.in_delay = 0  # requests propagating on a link
        self.unstable_reason: str | None = None
        self.arrivals_done = False
        self.arrivals_end_s: float | None = None
        self.done = kernel.new_event(self.env)
        self._arrive_cb = self._arrive
        self._after_delay_cb = self._after_delay_rec if self.record else self._after_delay
        self._events, self._ids = kernel.event_queue(self.env)  # propagation wake-ups, pushed inline
        self._bins = [0] * len(LatencyHistogram().counts)
        self._n = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._min = math.inf
        self._max = 0.0
        self.timeline = Timeline(max((spec.duration_s or 600.0) / 500, 1e-3))
        self._timeline_add = self.timeline.add
        self.device_timelines: dict[str | None, Timeline] = {}  # per device, for a panel per device
        self.rec: list[RequestRecord] = []

    def _build_stations(self) -> None:
        world, env = self.world, self.env
        # With records, per-stage times are kept too; without, the hot path does not even test for it.
        done = self._station_done_rec if self.record else self._station_done
        self.nodes: dict[str, PSStation] = {n: PSStation(env, n, nm.capacity, 1.0, done) for n, nm in world.nodes.items()}
        self.links: dict[tuple[str, str], PSStation] = {}
        self.delay_s: dict[tuple[str, str], float] = {}
        self.jitter_ms: dict[tuple[str, str], float] = {}
        for lk in world.topology.links:
            for hop in ((lk.a, lk.b), (lk.b, lk.a)):
                mbps, rtt_ms = world.nominal_mbps(hop), world.rtt_ms(hop)
                self.bandwidth_mbps[hop] = mbps
                cap = mathis_cap_bytes_per_s(rtt_ms, lk.loss_pct)
                self.links[hop] = PSStation(env, hop, mbps_to_bytes_per_s(mbps), cap, done)
                self.delay_s[hop] = rtt_ms / 2000
                self.jitter_ms[hop] = lk.jitter_ms

    # ------------------------------------------------------------------ primitive API

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
        """Call fn() at first_s (default period_s) and every period_s seconds after."""
        kernel.every(self.env, period_s, fn, first_s)

    def submit_work(self, node: str, work_s: float, on_done, overhead: bool = False) -> None:
        """Run work_s of full-speed work on a node (it shares the node with requests); on_done(elapsed_s)."""
        if overhead:
            self.overhead_work_s += work_s
        self._submit(self.nodes[node], work_s, on_done)

    def submit_transfer(self, hop: tuple[str, str], size_bytes: float, on_done) -> None:
        """Carry bytes over one directed link (sharing it with requests); on_done(serialisation_s)."""
        self.probe_bytes += size_bytes
        self._submit(self.links[hop], size_bytes, on_done)

    def _submit(self, station: PSStation, work: float, on_done) -> None:
        # One step without propagation: on_done gets the time the station took to serve the work.
        now = self.env.now
        job = Job(-1, None, (Step(False, station, work),), now, None)
        job.on_done = on_done
        if self.record:
            job.start_records()
        station.arrive(job, work, now)

    # ------------------------------------------------------------------ plans and offered load

    def _compile(self, device: str, split: Split) -> tuple[str, tuple[Step, ...]]:
        key = (device, split)
        if key in self._compiled:
            return self._compiled[key]
        plan = self.world.plan(device, split, reply=self.spec.reply)
        steps, means = [], []
        for i, st in enumerate(plan.stages):
            if st.kind == "compute":
                const, draw = self.world.service_sampler(st.node, st.first_block, st.last_block,
                                                         self.spec.service, self.spec.service_cv)
                buf = None if draw is None else Buffer(draw, stream(self.seed, f"svc/{device}/{split.stream_key}/{i}"))
                steps.append(Step(False, self.nodes[st.node], const, buf))
                mean = const if const is not None else self.world.mean_work_s(st.node, st.first_block, st.last_block)
                means.append((self.nodes[st.node], mean))
            else:
                jitter = self.jitter_ms[st.link]
                jbuf = None
                if jitter > 0:
                    half = jitter / 2000
                    jbuf = Buffer(lambda rng, n, h=half: rng.uniform(-h, h, n),
                                  stream(self.seed, f"jitter/{device}/{split.stream_key}/{i}"))
                steps.append(Step(True, self.links[st.link], st.size_bytes, delay_s=self.delay_s[st.link], jitter=jbuf))
                means.append((self.links[st.link], st.size_bytes))
        compiled = (split.id, tuple(steps))
        self._compiled[key] = compiled
        self._stage_means[key] = means
        return compiled

    def offered_load(self) -> dict:
        """Per station, the long-run busy fraction the current splits ask for (>= 1 cannot be served)."""
        streams = self._streams
        rates = {} if streams is None else streams.rates_per_s(self.spec.arrivals, self._devices)
        demand: dict = {}
        for device, split in self.split.items():
            lam = rates.get(device, 0.0)
            for station, work in self._stage_means[(device, split)]:
                demand[station] = demand.get(station, 0.0) + lam * work
        return {s.name: d / s.capacity if s.capacity > 0 else math.inf for s, d in demand.items()}

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

    # ------------------------------------------------------------------ requests (the hot path)

    def _station_done(self, job: Job, now: float) -> None:
        steps = job.steps
        i = job.next
        st = steps[i]
        i += 1
        job.next = i
        if st.is_link:  # propagate before the next stage
            d = st.delay_s
            if st.jitter is not None:
                d += st.jitter.take()
            if d > 0:
                self.in_delay += 1
                wake = Wake()  # kernel.after, inline: one per link a request crosses
                wake.callbacks = [self._after_delay_cb]
                wake.value = job
                wake.at_s = t = now + d
                heappush(self._events, (t, 1, next(self._ids), wake))
                return
        if i == len(steps):
            self._finish(job, now)
            return
        st = steps[i]
        w = st.work
        if w is None:
            w = st.draw.take()
        st.station.arrive(job, w, now)

    def _station_done_rec(self, job: Job, now: float) -> None:
        if job.steps[job.next].is_link:
            job.transfer_s += now - job.mark_s
        else:
            job.compute_s += now - job.mark_s
        job.mark_s = now
        self._station_done(job, now)

    def _after_delay_rec(self, wake) -> None:
        job = wake.value
        job.propagation_s += wake.at_s - job.mark_s
        job.mark_s = wake.at_s
        self._after_delay(wake)

    def _after_delay(self, wake) -> None:
        self.in_delay -= 1
        self._start_step(wake.value, wake.at_s)

    def _start_step(self, job: Job, now: float) -> None:
        steps = job.steps
        i = job.next
        if i == len(steps):
            self._finish(job, now)
            return
        st = steps[i]
        w = st.work  # bytes for a link, constant work for a compute stage (None: draw it)
        if w is None:
            w = st.draw.take()
        st.station.arrive(job, w, now)

    def _finish(self, job: Job, now: float) -> None:
        t0 = job.arrival_s
        lat = now - t0
        if job.request < 0:
            job.on_done(lat)
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
            self._bins[_bin_of(lat)] += 1
            self._timeline_add(now, lat)
            per_device = self.device_timelines.get(job.device)
            if per_device is None:
                per_device = self.device_timelines[job.device] = Timeline(self.timeline.width_s)
            per_device.add(now, lat)
        if self.record:
            self.rec.append(RequestRecord(job.request, job.device, job.config, t0, now, lat, job.compute_s,
                                          job.transfer_s, job.propagation_s))
        if self._closed and not self.arrivals_done:
            if self._think_s > 0:
                after(self.env, self._gap[job.device].take(), job.device, self._arrive_cb)
            else:
                self._new_request(job.device, now)
        if self.arrivals_done and self.in_flight == 0 and not self.done.triggered:
            self.done.succeed()

    def _new_request(self, device: str, now: float) -> None:
        self.arrived += 1
        self.in_flight += 1
        config_id, steps = self.current[device]
        job = Job(self.arrived, device, steps, now, config_id)
        if self.record:
            job.start_records()
        if self.in_flight > self._max_in_flight:
            self._unstable(f"more than {self._max_in_flight} requests in flight at t={now:.3f} s")
        limit = self._limit
        if limit is not None and self.arrived >= limit:
            self._end_arrivals()
        self._start_step(job, now)

    def _arrive(self, wake) -> None:
        if self.arrivals_done:
            return
        device = wake.value
        now = wake.at_s
        self._new_request(device, now)
        if self.arrivals_done or self._closed:
            return
        gap = self._gap[device].take()
        if gap is None:  # trace exhausted
            self._trace_left -= 1
            if self._trace_left == 0:
                self._end_arrivals()
            return
        duration_s = self._duration_s
        if duration_s is not None and now + gap >= duration_s:
            self._device_left -= 1
            if self._device_left == 0:
                self._end_arrivals()
            return
        after(self.env, gap, device, self._arrive_cb)

    # ------------------------------------------------------------------ arrivals and the end of a run

    def _arrival_devices(self) -> list[str]:
        wanted = self.spec.arrivals.devices
        if not wanted:
            return self.world.devices
        for d in wanted:
            if d not in self.world.paths:
                raise TestbedError(f"arrivals.devices: {d!r} is not a device node with a resource; devices: "
                                   f"{', '.join(self.world.devices)}")
        return list(wanted)

    def _setup_arrivals(self) -> None:
        a = self.spec.arrivals
        self._devices = self._arrival_devices()
        self._streams = arrival_streams(a, self._devices, self.seed)
        self._gap = self._streams.gaps
        self._closed = a.kind == "closed"
        self._think_s = a.think_s
        first = self._streams.first
        self._device_left = len(first) if a.kind == "trace" else len(self._devices)
        self._trace_left = len(first) if a.kind == "trace" else 0
        if self._closed:
            for d in self._devices:
                for _ in range(a.concurrency):
                    self._new_request(d, self.env.now)
            if self.spec.duration_s is not None:
                kernel.at(self.env, self.spec.duration_s, self._end_arrivals)
            return
        for d, t in first.items():
            if self.spec.duration_s is not None and t >= self.spec.duration_s:
                self._device_left -= 1
                continue
            after(self.env, t, d, self._arrive_cb)
        if self._device_left == 0:
            self._end_arrivals()

    def _end_arrivals(self) -> None:
        if self.arrivals_done:
            return
        self.arrivals_done = True
        now = self.env.now
        self.arrivals_end_s = now if self.spec.duration_s is None else max(now, self.spec.duration_s)
        limit = self.spec.drain_limit_s or max(60.0, self.arrivals_end_s)

        def guard():
            if not self.done.triggered:
                self._unstable(f"{self.in_flight} requests still in flight {limit:g} s after arrivals ended")

        kernel.at(self.env, self.arrivals_end_s - now + limit, guard)
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

    # ------------------------------------------------------------------ conditions

    def _apply(self, trace, value: float) -> None:
        now = self.env.now
        s = trace.spec
        if s.target == "link":
            lk = self.world.topology.link(*s.link)
            for hop in ((lk.a, lk.b), (lk.b, lk.a)):
                self.bandwidth_mbps[hop] = value
                cap = mathis_cap_bytes_per_s(self.world.rtt_ms(hop), lk.loss_pct)
                self.links[hop].set_capacity(mbps_to_bytes_per_s(value), cap)
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

    def _start_traces(self) -> None:
        """Conditions at t=0 apply now (before the policy's first decision); later ones run as processes."""
        for i, trace in enumerate(self.traces):
            changes = trace.changes(stream(self.seed, f"trace/{i}"))
            nxt = next(changes, None)
            while nxt is not None and nxt[0] <= 0:
                self._apply(trace, nxt[1])
                nxt = next(changes, None)
            if nxt is not None:
                kernel.run_process(self.env, self._trace_process(trace, changes, nxt))

    # ------------------------------------------------------------------ run

    def requests_in_stations(self) -> int:
        """Requests queued or in service at any node or link (for conservation checks)."""
        stations = list(self.nodes.values()) + list(self.links.values())
        return sum(1 for s in stations for job in s.jobs() if job.request >= 0)

    def run(self, until_s: float | None = None) -> dict:
        """Run to the end (or to instability, or to until_s) and return raw figures for the runner."""
        self._warmup = self.spec.warmup_s
        self._limit = self.spec.requests
        self._duration_s = self.spec.duration_s
        self._max_in_flight = self.spec.max_in_flight
        self._check_traces()
        wall0 = time.perf_counter()
        self._start_traces()
        self.policy.start(self)
        self._setup_arrivals()
        self._started = True
        rho = self.offered_load()
        self._note_load()
        if until_s is not None:
            if until_s > self.env.now:
                self.env.run(until=until_s)
        elif not self.done.triggered:
            self.env.run(until=self.done)
        return self._figures(time.perf_counter() - wall0, rho)

    def _figures(self, wall_s: float, rho: dict) -> dict:
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
