"""An independent, deliberately literal model of the original tool's 3-tier prediction, for tests only.

It enumerates (device, edge, cloud) splits exactly as the original described them and applies its
rules: a tier "runs" when it has blocks; the device's payload is zero when edge and cloud compute
times are both zero, else the edge's payload is zero when the cloud's compute time is zero.
"""

from __future__ import annotations

from scission.profiles import Profile


def reference_predict(profiles: list[Profile], network, model: str, input_bytes=150_000, filters=()):
    by_tier = {t: [p for p in profiles if p.resource.tier == t] for t in ("device", "edge", "cloud")}
    n = len(by_tier["device"][0].models[model].blocks)
    results = {}
    for dev in by_tier["device"]:
        for edge in by_tier["edge"]:
            for cloud in by_tier["cloud"]:
                for x in range(-1, n):
                    for y in range(-1, n):
                        if not (y > x or y == -1):
                            continue
                        z = n - 1 if (x != n - 1 and y != n - 1) else -1
                        segs = {
                            "device": (0, x) if x != -1 else None,
                            "edge": (x + 1, y) if y != -1 else None,
                            "cloud": (max(x, y) + 1, z) if z != -1 else None,
                        }
                        res = {"device": dev, "edge": edge, "cloud": cloud}
                        times, outs, ranges = {}, {}, {}
                        for tier, seg in segs.items():
                            if seg is None:
                                times[tier], outs[tier], ranges[tier] = 0, None, (-1, -1)
                                continue
                            blocks = res[tier].models[model].blocks
                            total = 0
                            for b in range(seg[0], seg[1] + 1):
                                total += blocks[b].latency.mean_s
                            times[tier] = total
                            outs[tier] = blocks[seg[1]].output_bytes
                            ranges[tier] = (blocks[seg[0]].first_layer, blocks[seg[1]].last_layer)
                        d_out = outs["device"] if segs["device"] else input_bytes
                        e_out = outs["edge"] if segs["edge"] else 0
                        if times["edge"] == 0 and times["cloud"] == 0:
                            d_out = 0
                        elif times["cloud"] == 0:
                            e_out = 0
                        dn = dev.resource.name
                        en = edge.resource.name if segs["edge"] else None
                        cn = cloud.resource.name if segs["cloud"] else None
                        transfer = 0.0
                        if en is not None:
                            link = network.link(dn, en)
                            transfer += link.rtt_ms / 1000 + d_out / (link.bandwidth_mbps * 125_000)
                            if cn is not None:
                                link = network.link(en, cn)
                                transfer += link.rtt_ms / 1000 + e_out / (link.bandwidth_mbps * 125_000)
                        elif cn is not None:
                            link = network.link(dn, cn)
                            transfer += link.rtt_ms / 1000 + d_out / (link.bandwidth_mbps * 125_000)
                        total = times["device"] + times["edge"] + times["cloud"]
                        scenario = {
                            "names": {"device": dn, "edge": en, "cloud": cn},
                            "ranges": ranges,
                            "times": times,
                            "d_out": d_out,
                            "e_out": e_out,
                            "total_compute": total,
                            "latency": total + transfer,
                            "mb": (d_out + e_out) / 1e6,
                        }
                        if all(f(scenario) for f in filters):
                            key = (dn, en, cn, ranges["device"], ranges["edge"], ranges["cloud"])
                            results[key] = scenario
    return sorted(results.values(), key=lambda s: s["latency"])
