"""Node image: assemble the build context from docker/Dockerfile and this project, tag it by content hash."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from emulator import docker_backend
from emulator.errors import ImageError

__all__ = ["BASE_IMAGE", "IMAGE_REPO", "TF_REQUIREMENT", "build_node_image", "ensure_base", "node_image_tag"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DOCKER_DIR = ROOT / "docker"
IMAGE_REPO = "scission-node"
BASE_IMAGE = "scission-node-base:bookworm"
TF_REQUIREMENT = "tensorflow-cpu==2.21.0"
PACKAGES = ("scission", "emulator", "testbed")
CA_BUNDLES = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pki/tls/certs/ca-bundle.crt"))


def _source_files() -> list[Path]:
    files = [ROOT / "pyproject.toml"]
    for package in PACKAGES:
        if (ROOT / package).is_dir():
            files += sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _requirements() -> str:
    """Runtime dependencies from pyproject.toml, installed in their own cached layer."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return "\n".join(project.get("dependencies", [])) + "\n"


def node_image_tag(base: str = BASE_IMAGE, tf_requirement: str = TF_REQUIREMENT) -> str:
    """scission-node:<12 hex> from the Dockerfile, base, TF pin and project sources: rebuilt only on change."""
    digest = hashlib.sha256()
    digest.update((DOCKER_DIR / "Dockerfile").read_bytes())
    digest.update(f"{base}\0{tf_requirement}\0".encode())
    for path in _source_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return f"{IMAGE_REPO}:{digest.hexdigest()[:12]}"


def ensure_base(base: str = BASE_IMAGE) -> None:
    """Pull a standard base (e.g. debian:bookworm-slim) where a registry is reachable; build the offline
    debootstrap base when that is the one asked for and it is missing."""
    if docker_backend.image_exists(base):
        return
    if base != BASE_IMAGE:
        log.info("pulling base image %s", base)
        docker_backend.pull_image(base)
        return
    log.info("building offline base image %s (debootstrap, about a minute)", base)
    proc = subprocess.run(
        [str(DOCKER_DIR / "build_base.sh"), base], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ImageError(f"docker/build_base.sh failed ({proc.returncode}): {tail[0]}")


def _ca_bundle() -> Path:
    for path in CA_BUNDLES:
        if path.is_file():
            return path
    raise ImageError("no host CA bundle found (looked in " + ", ".join(map(str, CA_BUNDLES)) + ")")


def build_node_image(
    *,
    base: str = BASE_IMAGE,
    tf_requirement: str = TF_REQUIREMENT,
    force: bool = False,
    on_line: Callable[[str], None] = lambda line: None,
) -> str:
    """Return the tag of an up-to-date node image, building it (minutes the first time) when missing."""
    tag = node_image_tag(base, tf_requirement)
    if not force and docker_backend.image_exists(tag):
        return tag
    ensure_base(base)
    with tempfile.TemporaryDirectory(prefix="scission-node-ctx-") as tmp:
        ctx = Path(tmp)
        shutil.copy(DOCKER_DIR / "Dockerfile", ctx / "Dockerfile")
        shutil.copy(_ca_bundle(), ctx / "ca-bundle.crt")
        (ctx / "requirements.txt").write_text(_requirements())
        src = ctx / "src"
        for path in _source_files():
            dest = src / path.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
        readme = ROOT / "README.md"
        (src / "README.md").write_text(readme.read_text() if readme.is_file() else "scission testbed\n")
        log.info("building node image %s", tag)
        docker_backend.build_image(
            ctx, tag, {"BASE": base, "TF_REQUIREMENT": tf_requirement}, on_line=on_line
        )
    docker_backend.remove_images(IMAGE_REPO, keep=tag)
    return tag
