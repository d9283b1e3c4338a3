"""`testbed report` pages load in headless Chromium with no errors, and every plot is visible."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, in_ci

from testbed.report import build_report
from testbed.sweep.runner import run_sweep
from testbed.sweep.spec import load_sweep

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _browser_check(page_path: Path) -> dict:
    if not Path(CHROMIUM).exists():
        if in_ci():
            pytest.fail("chromium is not installed (scripts/test.sh installs it)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        images = page.evaluate(
            """() => Array.from(document.images).map(img => {
                   img.scrollIntoView();
                   const r = img.getBoundingClientRect();
                   return {ok: img.complete && img.naturalWidth > 0, w: r.width, h: r.height};
               })"""
        )
        tables = page.evaluate("() => document.querySelectorAll('table').length")
        title = page.title()
        browser.close()
    return {"errors": errors, "images": images, "tables": tables, "title": title}


def test_sweep_report_in_chromium(tmp_path):
    doc = {
        "name": "report-test",
        "base": {"simulation": str(REPO / "experiments" / "sim-legacy-partition.yaml")},
        "axes": {"bandwidth": {"values": [1, 10, 50], "unit": "mbit"}, "model": ["mobilenetv2", "resnet50"]},
        "replications": 2,
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    outcome = run_sweep(load_sweep(tmp_path / "s.yaml"), tmp_path / "out", workers=2)
    page = build_report(outcome.results_path)
    html = page.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    seen = _browser_check(page)
    assert seen["errors"] == []
    assert len(seen["images"]) >= 4
    assert all(img["ok"] and img["w"] > 100 and img["h"] > 100 for img in seen["images"]), seen["images"]
    assert seen["tables"] >= 2


def test_run_folder_report_in_chromium(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = tmp_path / "run"
    (folder / "plots").mkdir(parents=True)
    fig, ax = plt.subplots()
    ax.scatter([1, 2, 3], [1.1, 1.9, 3.2])
    fig.savefig(folder / "plots" / "predicted-vs-measured.png")
    plt.close(fig)
    (folder / "summary.json").write_text(json.dumps(
        [{"topology": "three-tier-wifi", "model": "mobilenetv2", "median_rel_error": 0.08, "spearman": 0.9,
          "regret": 0.0}]))
    (folder / "summary.md").write_text("# summary\n")
    page = build_report(folder)
    seen = _browser_check(page)
    assert seen["errors"] == []
    assert len(seen["images"]) == 1 and seen["images"][0]["ok"]
    assert seen["tables"] >= 1


def test_distribution_gain_counts_every_tiers_native_as_single_tier():
    import pandas as pd

    from testbed.report import distribution_gain

    table = pd.DataFrame({"bandwidth_mbps": [5.0] * 3, "seed": [1] * 3, "policy": ["gateway-only", "cloud-only", "static"],
                          "mean_s": [0.4, 0.8, 0.2]})
    gain = distribution_gain(table)
    assert list(gain["policy"]) == ["static"]
    assert gain["distribution_gain"].iloc[0] == 2.0  # the best native (gateway-only, 0.4 s) over 0.2 s
    assert distribution_gain(table[table["policy"] == "static"]) is None
