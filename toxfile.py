"""tox plugin (loaded by tox from the project root): tox environments reuse the packages of .venv.

scripts/setup.sh puts TensorFlow and every other dependency (about 2 GB) into .venv. A plain tox
environment would download and install all of it again for each environment. With ``reuse_venv`` set
(tox.ini sets it to {toxinidir}/.venv), each environment gets a .pth line to that venv's site-packages
before tox installs anything, so pip finds those requirements already satisfied and installs only
what is missing or different (this project itself, editable). The environment's own site-packages comes
first on sys.path, so what tox installs wins. ``system_site_packages`` cannot do this: a virtualenv made
from a venv's interpreter inherits the system Python's packages, not the venv's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tox.plugin import impl

PTH_NAME = "_reuse_venv.pth"
log = logging.getLogger(__name__)


@impl
def tox_add_env_config(env_conf, state) -> None:  # noqa: ARG001 (hook signature)
    env_conf.add_config(keys=["reuse_venv"], of_type=str, default="",
                        desc="a virtualenv whose site-packages this environment may use for its requirements")


@impl
def tox_on_install(tox_env, arguments, section, of_type) -> None:  # noqa: ARG001 (hook signature)
    try:
        reuse = tox_env.conf["reuse_venv"]
        site = Path(tox_env.env_site_package_dir())
        version = tox_env.base_python.version_info
    except (KeyError, AttributeError):  # not a Python environment
        return
    if not reuse:
        return
    other = Path(reuse) / "lib" / f"python{version.major}.{version.minor}" / "site-packages"
    pth = site / PTH_NAME
    if not other.is_dir():
        log.warning("reuse_venv: no %s (run scripts/setup.sh); installing every requirement", other)
        return
    if not pth.exists() or pth.read_text().strip() != str(other):
        site.mkdir(parents=True, exist_ok=True)
        pth.write_text(f"{other}\n")
