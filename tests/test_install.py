"""The install files agree with each other (the Makefile, environment.yml, the lock)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_environment_yml_pins_the_lock_minus_the_no_deps_set():
    lock = {k: v.replace("+cpu", "") for k, v in _pins(ROOT / "requirements/lock.txt").items()}
    no_deps = _pins(ROOT / "requirements/nodeps.txt")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = dict(line.lower().split("==") for line in pip_section)
    assert conda_pins == {k: v for k, v in lock.items() if k not in no_deps}


def test_lock_covers_every_direct_requirement_and_pins_cpu_torch():
    lock = _pins(ROOT / "requirements/lock.txt")
    for name in ("runtime.txt", "dev.txt", "nodeps.txt"):
        for line in (ROOT / "requirements" / name).read_text().splitlines():
            requirement = re.split(r"[=<>\[ ]", line.split("#")[0].strip())[0].lower()
            if requirement:
                assert requirement in lock, f"{requirement} from {name} is not locked"
    assert lock["torch"].startswith("2.13.0") and lock["numpy"] == "1.26.4"
    assert not [k for k in lock if k.startswith("nvidia")], "no CUDA wheels"


def test_makefile_installs_the_no_deps_set_without_dependencies():
    makefile = (ROOT / "Makefile").read_text()
    assert "--no-deps -r requirements/nodeps.txt" in makefile
    assert "-c requirements/lock.txt" in makefile
