"""Exact top-k partition search: a dynamic programme over (tier, resource, block boundary).

Each tier's run of blocks is a window of start positions for every end position; every constraint the
original tool knows (layer in / not in range, must / must not run, resource names, upload caps, absolute
compute caps) narrows that window or masks a hop, so the DP stays exact. The k best partial costs per
state are kept; windows are answered by a segment tree vectorised over all end positions at once, and
hops by numpy broadcasting over (sender, receiver, boundary). Cost is O(T^2 R^2 n k + T R n k log n).

The one constraint that is not local, a compute cap as a percentage of the total, is handled by asking
for more candidates until k of them satisfy it (every candidate list is exact, so this is exact too).

The legacy zero rule (see ``scission.problem``) adds states: a "normal" segment records whether it ran a
block with non-zero latency, and a "zero" mode follows the one hop that carries no bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scission.problem import Candidate, Configuration, Problem, TierConstraints, evaluate, satisfies

INF = np.inf
_TOL = 1e-12


# --------------------------------------------------------------------------------------------- k-best kernels


def _kbest(vals: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest along the last axis (unordered), with their ids."""
    if vals.shape[-1] <= k:
        pad = k - vals.shape[-1]
        if pad:
            shape = vals.shape[:-1] + (pad,)
            vals = np.concatenate([vals, np.full(shape, INF)], axis=-1)
            ids = np.concatenate([ids, np.full(shape, -1, dtype=np.int64)], axis=-1)
        return vals, ids
    part = np.argpartition(vals, k - 1, axis=-1)[..., :k]
    return np.take_along_axis(vals, part, axis=-1), np.take_along_axis(ids, part, axis=-1)


def _window_kbest(vals: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For every (row, query) the k smallest of ``vals[row, lo:hi+1, :]`` and their flat ids (i * k + kappa).

    vals: (R, m, k); lo, hi: (R, Q) inclusive bounds (empty when lo > hi). A segment tree per row, built
    and queried for all rows and queries at once.
    """
    rows, m, _ = vals.shape
    size = 1
    while size < m:
        size *= 2
    level_vals = np.full((rows, size, k), INF)
    level_vals[:, :m] = vals
    level_ids = np.full((rows, size, k), -1, dtype=np.int64)
    level_ids[:, :m] = np.arange(m)[None, :, None] * k + np.arange(k)[None, None, :]
    levels = [(level_vals, level_ids)]
    while level_vals.shape[1] > 1:
        half = level_vals.shape[1] // 2
        level_vals, level_ids = _kbest(
            level_vals.reshape(rows, half, 2 * k), level_ids.reshape(rows, half, 2 * k), k
        )
        levels.append((level_vals, level_ids))

    queries = lo.shape[1]
    acc_vals = np.full((rows, queries, k), INF)
    acc_ids = np.full((rows, queries, k), -1, dtype=np.int64)
    left = lo.astype(np.int64).copy()
    right = hi.astype(np.int64) + 1
    empty = left >= right
    left[empty] = 0
    right[empty] = 0
    row_index = np.arange(rows)[:, None]
    for lv_vals, lv_ids in levels:
        width = lv_vals.shape[1]
        for take_right in (False, True):
            if take_right:
                take = (left < right) & ((right & 1) == 1)
                right = right - take
                index = right
            else:
                take = (left < right) & ((left & 1) == 1)
                index = left
            if take.any():
                clipped = np.minimum(index, width - 1)
                got_vals = np.where(take[..., None], lv_vals[row_index, clipped], INF)
                got_ids = np.where(take[..., None], lv_ids[row_index, clipped], -1)
                acc_vals, acc_ids = _kbest(
                    np.concatenate([acc_vals, got_vals], axis=-1), np.concatenate([acc_ids, got_ids], axis=-1), k
                )
            if not take_right:
                left = left + take
        left >>= 1
        right >>= 1
    acc_ids = np.where(np.isfinite(acc_vals), acc_ids, -1)
    return acc_vals, acc_ids


# --------------------------------------------------------------------------------------------- per-tier facts


@dataclass
class _TierData:
    index: int
    name: str
    cands: list[Candidate]
    cons: TierConstraints
    prefix: np.ndarray  # (R, n+1) prefix sums of latency
    overhead: np.ndarray  # (R,) per-call overhead, paid once by a segment that runs at least one block
    out: np.ndarray  # (R, n+1) payload sent when the segment ends at j (j=0: input bytes)
    lo: np.ndarray  # (R, n+1) window of starts for each end j, before legacy flags
    hi: np.ndarray
    last_nonzero: np.ndarray  # (R, n+1) max{b < j: latency > 0}, -1 when none
    can_run: bool
    skippable: bool


def _first_true(mask: np.ndarray, default: int) -> int:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else default


def _tier_data(problem: Problem, t: int) -> _TierData:
    tier = problem.tiers[t]
    cons = problem.constraint(tier.name)
    n = problem.block_count
    cands = [c for c in tier.candidates if cons.allows_resource(c.name)]
    rows = len(cands)
    prefix = np.zeros((rows, n + 1))
    overhead = np.array([c.call_overhead_s for c in cands], dtype=float)
    out = np.zeros((rows, n + 1))
    lo = np.zeros((rows, n + 1), dtype=np.int64)
    hi = np.zeros((rows, n + 1), dtype=np.int64)
    last_nonzero = np.full((rows, n + 1), -1, dtype=np.int64)
    positions = np.arange(n + 1)
    for r, cand in enumerate(cands):
        lat = np.asarray(cand.latencies_s, dtype=float)
        prefix[r, 1:] = np.cumsum(lat)
        out[r, 0] = problem.input_bytes
        out[r, 1:] = np.asarray(cand.output_bytes, dtype=float)
        first = np.asarray(cand.first_layers)
        last = np.asarray(cand.last_layers)
        # legacy rule: a tier "ran" when its compute is non-zero; with a call overhead every block counts
        nz = np.where((lat > 0) | (overhead[r] > 0), np.arange(n), -1)
        last_nonzero[r, 1:] = np.maximum.accumulate(nz)
        # Segment [i, j): runs blocks i..j-1, layer range first[i]..last[j-1].
        lo_r = np.zeros(n + 1, dtype=np.int64)
        hi_r = positions - 1  # at least one block
        valid = positions >= 1
        for layer in cons.include_layers:
            hi_r = np.minimum(hi_r, _first_true(first > layer, n) - 1)  # first[i] <= layer
            valid &= positions - 1 >= _first_true(last >= layer, n + 1)  # last[j-1] >= layer
        for layer in cons.exclude_layers:
            # For ends whose range reaches the layer, the start must lie beyond it: first[i] > layer.
            reaches = np.zeros(n + 1, dtype=bool)
            reaches[1:] = last >= layer
            lo_r = np.where(reaches, np.maximum(lo_r, _first_true(first > layer, n + 1)), lo_r)
        if cons.time_cap_s is not None:
            # blocks i..j-1 cost prefix[j] - prefix[i] + overhead <= cap
            bound = prefix[r] + overhead[r] - cons.time_cap_s * (1 + _TOL) - _TOL
            lo_r = np.maximum(lo_r, np.searchsorted(prefix[r], bound, side="left"))
        if t == 0:
            # The device always starts at block 0; j = 0 means it runs nothing.
            valid = valid & (lo_r <= 0) & (hi_r >= 0)
            lo_r = np.zeros(n + 1, dtype=np.int64)
            hi_r = np.zeros(n + 1, dtype=np.int64)
            if cons.requires_run or cons.include_layers:
                valid[0] = False
            else:
                valid[0] = True
            if cons.must_run is False:
                valid[1:] = False
        elif cons.must_run is False:
            valid[:] = False
        hi_r = np.where(valid, hi_r, -1)
        lo_r = np.where(valid, lo_r, 0)
        lo[r], hi[r] = lo_r, hi_r
    can_run = rows > 0 and cons.must_run is not False
    skippable = t > 0 and not cons.requires_run and not cons.include_layers
    return _TierData(t, tier.name, cands, cons, prefix, overhead, out, lo, hi, last_nonzero, can_run, skippable)


# --------------------------------------------------------------------------------------------------- the DP


@dataclass
class _Source:
    """A list of sender states feeding a receiver's arrivals: G array ``key`` of tier ``tier``."""

    key: tuple
    tier: int
    zero_payload: bool


class _Search:
    def __init__(self, problem: Problem, k: int):
        self.problem = problem
        self.k = k
        self.n = problem.block_count
        self.legacy = problem.legacy_zero_rule
        self.tiers = [_tier_data(problem, t) for t in range(len(problem.tiers))]
        self.G: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # (tier, variant) -> vals, src
        self.A: dict[tuple, tuple[np.ndarray, np.ndarray, list[_Source]]] = {}  # (tier, mode) -> ...

    # Variants of a finished segment: device "dev"; normal "N" (or "Nnz"/"Nz" with the legacy rule); "Z".
    def _normal_variants(self) -> list[str]:
        return ["Nnz", "Nz"] if self.legacy else ["N"]

    def run(self) -> list[tuple[float, tuple, tuple]]:
        k, n = self.k, self.n
        dev = self.tiers[0]
        rows = len(dev.cands)
        vals = np.full((rows, n + 1, k), INF)
        src = np.full((rows, n + 1, k), -1, dtype=np.int64)
        ok = dev.hi >= 0
        dev_cost = dev.prefix.copy()
        dev_cost[:, 1:] += dev.overhead[:, None]  # j = 0: the device runs nothing and pays no call
        vals[:, :, 0] = np.where(ok, dev_cost, INF)
        self.G[(0, "dev")] = (vals, src)

        for t in range(1, len(self.tiers)):
            td = self.tiers[t]
            if not td.can_run:
                continue
            modes = ["N", "Z"] if self.legacy else ["N"]
            for mode in modes:
                self._arrive(t, mode)
            for mode in modes:
                if (t, mode) not in self.A:
                    continue
                a_vals = self.A[(t, mode)][0]
                lo, hi = td.lo, td.hi
                variants = ["Z"] if mode == "Z" else self._normal_variants()
                for variant in variants:
                    v_lo, v_hi = lo, hi
                    if variant == "Nnz":
                        v_hi = np.minimum(hi, td.last_nonzero)
                    elif variant in ("Nz", "Z"):
                        v_lo = np.maximum(lo, td.last_nonzero + 1)
                    shifted = a_vals - td.prefix[:, :, None]
                    best, ids = _window_kbest(shifted, v_lo, v_hi, k)
                    self.G[(t, variant)] = (best + td.prefix[:, :, None] + td.overhead[:, None, None], ids)
        return self._complete()

    def _sources(self, t: int, mode: str) -> list[_Source]:
        out = []
        for s in range(t):
            if not all(self.tiers[m].skippable for m in range(s + 1, t)):
                continue
            if s == 0:
                keys = [((0, "dev"), mode == "Z")]
            elif mode == "N":
                keys = [((s, v), False) for v in self._normal_variants()]
            else:
                keys = [((s, "Nnz"), True), ((s, "Z"), False)]
            out.extend(_Source(key, s, zero) for key, zero in keys if key in self.G)
        return out

    def _arrive(self, t: int, mode: str) -> None:
        k, n = self.k, self.n
        td = self.tiers[t]
        network = self.problem.network
        parts_vals, parts_ids, sources = [], [], []
        offset = 0
        for source in self._sources(t, mode):
            sd = self.tiers[source.tier]
            vals, _ = self.G[source.key]
            payload = np.zeros_like(sd.out) if source.zero_payload else sd.out
            if sd.cons.upload_cap_bytes is not None:
                vals = np.where((payload > sd.cons.upload_cap_bytes * (1 + _TOL))[..., None], INF, vals)
            rtt_s = np.full((len(sd.cands), len(td.cands)), INF)
            inv_bw = np.zeros((len(sd.cands), len(td.cands)))
            for a, ca in enumerate(sd.cands):
                for b, cb in enumerate(td.cands):
                    link = network.get(ca.name, cb.name)
                    if link is not None:
                        rtt_s[a, b] = link.delay_ms / 1000
                        inv_bw[a, b] = 1 / link.bandwidth_bytes_per_s
            hop = rtt_s[:, :, None] + payload[:, None, :] * inv_bw[:, :, None]  # (Rs, Rt, n+1)
            cand = vals[:, None, :, :] + hop[:, :, :, None]  # (Rs, Rt, n+1, k)
            cand[:, :, n, :] = INF  # the receiver must run at least one block
            rs = len(sd.cands)
            cand = cand.transpose(1, 2, 0, 3).reshape(len(td.cands), n + 1, rs * k)
            ids = offset + np.arange(rs * k, dtype=np.int64)
            parts_vals.append(cand)
            parts_ids.append(np.broadcast_to(ids, cand.shape))
            sources.append(source)
            offset += rs * k
        if not parts_vals:
            return
        vals, ids = _kbest(np.concatenate(parts_vals, axis=-1), np.concatenate(parts_ids, axis=-1), k)
        ids = np.where(np.isfinite(vals), ids, -1)
        self.A[(t, mode)] = (vals, ids, sources)

    def _complete(self) -> list[tuple[float, tuple, tuple]]:
        """Finished configurations: a last active tier ends at block n and every later tier may be empty."""
        n, k = self.n, self.k
        finals = []
        for t, td in enumerate(self.tiers):
            if not all(self.tiers[m].skippable for m in range(t + 1, len(self.tiers))):
                continue
            keys = [(0, "dev")] if t == 0 else [(t, "Nnz" if self.legacy else "N"), (t, "Z")]
            for key in keys:
                if key not in self.G:
                    continue
                vals = self.G[key][0][:, n, :]
                cap = td.cons.upload_cap_bytes
                if key[1] == "Z" and t < len(self.tiers) - 1 and cap is not None:
                    # Legacy: after the zero-byte hop the last tier's output counts as sent (problem.evaluate).
                    vals = np.where((td.out[:, n] > cap * (1 + _TOL))[:, None], INF, vals)
                for r in range(vals.shape[0]):
                    for kappa in range(k):
                        if np.isfinite(vals[r, kappa]):
                            finals.append((float(vals[r, kappa]), key, (r, n, kappa)))
        finals.sort(key=lambda item: item[0])
        return finals[:k]

    def reconstruct(self, key: tuple, state: tuple) -> tuple[list[str | None], list[int]]:
        T = len(self.tiers)
        resources: list[str | None] = [None] * T
        counts = [0] * T
        k = self.k
        while True:
            t = key[0]
            r, j, kappa = state
            td = self.tiers[t]
            if t == 0:
                resources[0] = td.cands[r].name
                counts[0] = j
                return resources, counts
            flat = int(self.G[key][1][r, j, kappa])
            i, kappa_a = divmod(flat, k)
            resources[t] = td.cands[r].name
            counts[t] = j - i
            mode = "Z" if key[1] == "Z" else "N"
            _, a_ids, sources = self.A[(t, mode)]
            flat = int(a_ids[r, i, kappa_a])
            offset = 0
            for source in sources:
                rs = len(self.tiers[source.tier].cands)
                if flat < offset + rs * k:
                    r_s, kappa_s = divmod(flat - offset, k)
                    key, state = source.key, (r_s, i, kappa_s)
                    break
                offset += rs * k


def _run(problem: Problem, k: int) -> list[Configuration]:
    search = _Search(problem, k)
    configs = []
    for _, key, state in search.run():
        resources, counts = search.reconstruct(key, state)
        configs.append(evaluate(problem, resources, counts))
    return configs


def search(problem: Problem, k: int = 5) -> list[Configuration]:
    """The k fastest configurations that satisfy the problem's constraints, fastest first."""
    if k < 1:
        return []
    has_pct = any(c.time_cap_pct is not None for c in problem.constraints.values())
    want = k
    while True:
        configs = _run(problem, want)
        feasible = [c for c in configs if satisfies(problem, c)]
        if len(feasible) >= k or len(configs) < want or not has_pct:
            feasible.sort(key=lambda c: c.latency_s)
            return feasible[:k]
        want *= 4
