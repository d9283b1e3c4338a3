"""Node image: assemble the build context from docker/Dockerfile and this project, tag it by content hash.

The Dockerfile and the project files come from the checkout, or from an installed wheel's shipped copy
(scission.resources), so an installed ``emulator up`` builds the same image, with the same tag.
"""

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
from scission import resources

__all__ = ["BASE_IMAGE", "IMAGE_REPO", "TF_REQUIREMENT", "build_node_image", "ensure_base", "node_image_tag"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]  # the packages' parent: the checkout, or site-packages
DOCKER_DIR = resources.docker_dir()
PROJECT_FILES = ("pyproject.toml", "setup.py")
IMAGE_REPO = "scission-node"
BASE_IMAGE = "scission-node-base:bookworm"
# TensorFlow and the compiled runtimes a node may serve with (scission.runtimes); one pip argument list.
TF_REQUIREMENT = "tensorflow-cpu==2.21.0 onnxruntime==1.32.0 tf2onnx==1.17.0 onnx==1.23.2 ai-edge-litert==2.3.0"
PACKAGES = ("scission", "emulator", "testbed")
CA_BUNDLES = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pki/tls/certs/ca-bundle.crt"))


def _source_files() -> list[tuple[str, Path]]:
    """(name in the build context, file): the project files and every module of the three packages."""
    files = [(name, resources.project_file(name)) for name in PROJECT_FILES if resources.project_file(name).is_file()]
    if not files or files[0][0] != "pyproject.toml":
        raise ImageError(f"no pyproject.toml in {resources.root()}: reinstall the package or use a checkout")
    for package in PACKAGES:
        folder = ROOT / package
        if folder.is_dir():
            files += [(p.relative_to(ROOT).as_posix(), p) for p in sorted(folder.rglob("*.py"))
                      if "__pycache__" not in p.parts and p.relative_to(folder).parts[0] != resources.SHIPPED_DIR]
    return files


def _requirements() -> str:
    """Runtime dependencies from pyproject.toml, installed in their own cached layer."""
    project = tomllib.loads(resources.project_file("pyproject.toml").read_text())["project"]
    return "\n".join(project.get("dependencies", [])) + "\n"


def node_image_tag(base: str = BASE_IMAGE, tf_requirement: str = TF_REQUIREMENT) -> str:
    """scission-node:<12 hex> from the Dockerfile, base, TF pin and project sources: rebuilt only on change."""
    digest = hashlib.sha256()
    digest.update((DOCKER_DIR / "Dockerfile").read_bytes())
    digest.update(f"{base}\0{tf_requirement}\0".encode())
    for name, path in _source_files():
        digest.update(name.encode() + b"\0" + path.read_bytes())
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
        ["bash", str(DOCKER_DIR / "build_base.sh"), base], capture_output=True, text=True, check=False
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
        for name, path in _source_files():
            dest = src / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
        readme = resources.project_file("README.md")
        (src / "README.md").write_text(readme.read_text() if readme.is_file() else "scission testbed\n")
        log.info("building node image %s", tag)
        docker_backend.build_image(
            ctx, tag, {"BASE": base, "TF_REQUIREMENT": tf_requirement}, on_line=on_line
        )
    docker_backend.remove_images(IMAGE_REPO, keep=tag)
    return tag
