"""The wheel is enough: built from a clean copy of the checkout, installed into a fresh virtualenv outside
it, and its commands run from a folder outside it (issue 12 point 11: `pip wheel .` left out docker/, so
an installed `emulator up` could not build its node image).

The fresh virtualenv gets the wheel with --no-deps and reaches the heavy dependencies (TensorFlow,
pandas...) through a .pth line to this interpreter's site-packages, so the test needs no network for
them. About 30 s on the 2-core CI machine, most of it the wheel build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, in_ci

pytestmark = pytest.mark.slow

SHIPPED = "scission/shipped/"


def clean_copy(dest: Path) -> Path:
    """The files a fresh clone would have, plus this working tree's uncommitted ones (nothing ignored)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def outside_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("wheel")
    started = time.perf_counter()
    src = clean_copy(base / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src)],
                   check=True, capture_output=True, text=True)
    (wheel,) = (base / "dist").glob("scission_testbed-*.whl")
    built = time.perf_counter()
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True)
    # After the install, so pip does not take this interpreter's editable copy for the wheel's.
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "_outer_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = base / "elsewhere"
    work.mkdir()
    return {"wheel": wheel, "bin": env_dir / "bin", "site": site, "work": work,
            "build_s": built - started, "install_s": time.perf_counter() - built}


def run(installed: dict, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [str(installed["bin"] / argv[0]), *argv[1:]]
    return subprocess.run(command, cwd=installed["work"], env=outside_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_wheel_carries_the_docker_build_context_and_the_shipped_files(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for name in ("docker/Dockerfile", "docker/build_base.sh", "pyproject.toml", "setup.py", "README.md",
                 "topologies/four-tier.yaml", "experiments/sim-four-tier.yaml",
                 "tests/data/legacy/network_stats.csv", "tests/data/legacy/device-raspi4.dat"):
        assert SHIPPED + name in names, name
    for folder in ("topologies", "experiments"):
        shipped = {Path(n).name for n in names if n.startswith(f"{SHIPPED}{folder}/") and n.count("/") == 3}
        assert shipped == {p.name for p in (REPO / folder).iterdir() if p.is_file()}, folder
    print(f"wheel build {installed['build_s']:.1f} s, venv + install {installed['install_s']:.1f} s")


def test_installed_code_is_the_wheel_and_builds_the_same_node_image(installed):
    from emulator.image import node_image_tag

    out = run(installed, "python", "-c", "import json, scission, emulator.image as i; print(json.dumps("
              "[scission.__file__, str(i.DOCKER_DIR), i.node_image_tag()]))")
    assert out.returncode == 0, out.stderr
    module, docker_dir, tag = json.loads(out.stdout)
    assert module.startswith(str(installed["site"])) and docker_dir.startswith(str(installed["site"]))
    assert (Path(docker_dir) / "Dockerfile").is_file()
    # Same Dockerfile, project files and modules as the checkout: the installed build is this image.
    assert tag == node_image_tag()

    out = run(installed, "emulator", "doctor", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    if "node_image" in report:
        assert report["node_image"]["tag"] == tag
    elif in_ci():
        pytest.fail(f"CI=true and emulator doctor found no Docker Engine: {report['engine']}")


def test_installed_predict_on_the_bundled_data_answers_as_in_the_readme(installed):
    out = run(installed, "scission", "predict", "legacy", "network_stats.csv", "vgg19", "-d", "!-1", "-e", "10",
              "-c", "16")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == (
        "[1] 9.0106s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 11, Cloud(6700k(GPU)) = 12 - 25")
    checkout = subprocess.run([sys.executable, "-m", "scission.cli", "predict", "tests/data/legacy",
                               "network_stats.csv", "vgg19", "-d", "!-1", "-e", "10", "-c", "16"], cwd=REPO,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout == checkout.stdout


def test_installed_simulate_and_validate_take_shipped_names(installed):
    out = run(installed, "testbed", "simulate", "sim-four-tier", "--requests", "30", "--no-plots", "--out", "sim")
    assert out.returncode == 0, out.stderr
    summary = json.loads((installed["work"] / "sim" / "summary.json").read_text())
    assert summary["policies"]
    out = run(installed, "emulator", "validate", "four-tier")
    assert out.returncode == 0, out.stderr
    assert "four-tier: 4 nodes" in out.stdout
    out = run(installed, "emulator", "up", "four-tier", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "ip netns add emu.four-tier." in out.stdout
    out = run(installed, "python", "-m", "scission.resources")
    assert out.returncode == 0, out.stderr
    assert "sim-four-tier" in out.stdout and "three-tier-wifi" in out.stdout and "legacy" in out.stdout


def test_checkout_names_resolve_to_the_repository_files(tmp_path, monkeypatch):
    from scission import resources

    assert resources.root() == REPO and resources.docker_dir() == REPO / "docker"
    assert resources.resolve("topologies", "four-tier") == str(REPO / "topologies" / "four-tier.yaml")
    assert resources.resolve("topologies", "four-tier.yaml") == str(REPO / "topologies" / "four-tier.yaml")
    assert resources.resolve("experiments", "sim-four-tier") == str(REPO / "experiments" / "sim-four-tier.yaml")
    assert resources.resolve("data", "legacy") == str(REPO / "tests" / "data" / "legacy")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "four-tier").write_text("mine")
    assert resources.resolve("topologies", "four-tier") == "four-tier"  # a file in the working directory wins
    assert resources.resolve("topologies", "nowhere") == "nowhere"
    assert resources.resolve("topologies", "sub/four-tier") == "sub/four-tier"


def test_a_missing_name_is_still_the_commands_own_one_line_error(installed):
    out = run(installed, "emulator", "validate", "no-such-topology")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "no-such-topology" in out.stderr


# ------------------------------------------------------------------ tox from a fresh clone (issue 12 point 8)


@pytest.fixture(scope="module")
def clone_with_venv(tmp_path_factory) -> Path:
    """A clean copy of the checkout whose .venv is this interpreter's (what scripts/setup.sh makes)."""
    src = clean_copy(tmp_path_factory.mktemp("clone") / "src")
    (src / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return src


def tox(clone: Path, *argv: str) -> subprocess.CompletedProcess:
    from conftest import console_script

    env = outside_env()
    env.pop("TOX_WORK_DIR", None)
    return subprocess.run([console_script("tox"), *argv], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=600)


def test_setup_installs_tox_into_the_venv():
    assert (Path(sys.prefix) / "bin" / "tox").is_file(), "scripts/setup.sh should install tox (the test extra)"
    assert "tox -e sweep" in (REPO / "docs" / "experiments.md").read_text()


def test_tox_lint_sweep_and_tests_work_from_a_fresh_clone(clone_with_venv):
    """The three environments the docs name, reusing .venv's packages: about a minute, not a 2 GB download."""
    clone, timings = clone_with_venv, {}
    started = time.perf_counter()
    out = tox(clone, "-e", "lint")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "All checks passed" in out.stdout
    timings["lint"] = time.perf_counter() - started

    spec = clone / "tiny-sweep.yaml"
    spec.write_text("name: tiny\nbase: {simulation: experiments/sim-legacy-partition.yaml}\n"
                    "axes:\n  model: [mobilenetv2, vgg16]\nreplications: 1\n")
    started = time.perf_counter()
    out = tox(clone, "-e", "sweep", "--", str(spec), "--out", str(clone / "sweep-out"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert (clone / "sweep-out" / "results.parquet").is_file()
    timings["sweep"] = time.perf_counter() - started

    started = time.perf_counter()
    out = tox(clone, "-e", "tests", "--", "-q", "-p", "no:cacheprovider", "tests/test_network.py")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
    timings["tests"] = time.perf_counter() - started

    # The environment runs the clone's code, with TensorFlow from .venv rather than a second copy.
    out = tox(clone, "exec", "-e", "tests", "-qq", "--", "python", "-c",
              "import importlib.metadata as m, json, scission; "
              "print(json.dumps([scission.__file__, str(m.distribution('tensorflow-cpu').locate_file(''))]))")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    module, tensorflow_site = json.loads(out.stdout.strip().splitlines()[-1])
    assert module == str(clone / "scission" / "__init__.py")
    assert Path(tensorflow_site).resolve() == Path(sysconfig.get_paths()["purelib"]).resolve()
    print("tox timings (s):", {k: round(v, 1) for k, v in timings.items()})
