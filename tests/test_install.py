"""The install files agree with each other (the Makefile, environment.yml, the lock)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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
    lock = _pins(ROOT / "requirements/lock.txt")
    no_deps = _pins(ROOT / "requirements/nodeps.txt")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = dict(line.lower().split("==") for line in pip_section)
    assert conda_pins == {k: v for k, v in lock.items() if k not in no_deps}


def test_lock_covers_every_direct_requirement_and_pins_torch_by_version():
    lock = _pins(ROOT / "requirements/lock.txt")
    for name in ("runtime.txt", "dev.txt", "nodeps.txt"):
        for line in (ROOT / "requirements" / name).read_text().splitlines():
            requirement = re.split(r"[=<>\[ ]", line.split("#")[0].strip())[0].lower()
            if requirement:
                assert requirement in lock, f"{requirement} from {name} is not locked"
    assert lock["torch"] == "2.13.0" and lock["numpy"] == "1.26.4"
    assert not [k for k in lock if k.startswith("nvidia")], "no CUDA wheels"


def test_makefile_installs_the_no_deps_set_without_dependencies():
    makefile = (ROOT / "Makefile").read_text()
    assert "--no-deps -r requirements/nodeps.txt" in makefile
    assert "-c requirements/lock.txt" in makefile


REQUIREMENT_FILES = [*sorted((ROOT / "requirements").glob("*.txt")), ROOT / "environment.yml"]


def _requirement_lines(path: Path) -> list[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line.removeprefix("- ").strip() for line in lines if line]


def test_no_requirement_needs_a_local_build_or_a_path_on_this_machine():
    """PyPI serves no `+local` label (torch==2.13.0+cpu), and a path exists on one machine only."""
    offenders = []
    for path in REQUIREMENT_FILES:
        for line in _requirement_lines(path):
            if re.search(r"==\S*\+", line) or re.search(r"(^|[\s=@])(/|~/|file:)", line):
                offenders.append(f"{path.name}: {line}")
    assert offenders == []


def test_the_local_label_check_catches_what_it_is_for(tmp_path):
    bad = tmp_path / "lock.txt"
    bad.write_text("numpy==1.26.4\ntorch==2.13.0+cpu\nfoo @ file:///opt/wheels/foo.whl\n")
    lines = _requirement_lines(bad)
    assert [line for line in lines if re.search(r"==\S*\+", line)] == ["torch==2.13.0+cpu"]
    assert [line for line in lines if re.search(r"(^|[\s=@])(/|~/|file:)", line)] == [
        "foo @ file:///opt/wheels/foo.whl"
    ]


def test_torch_build_choice_is_in_the_stamp_and_validated():
    makefile = (ROOT / "Makefile").read_text()
    assert "TORCH ?= auto" in makefile
    assert re.search(r"^STAMP := .*\$\(TORCH\)", makefile, re.M), "changing TORCH reinstalls"
    script = (ROOT / "requirements/torch.sh").read_text()
    for choice in ("auto)", "cpu)", "cuda)"):
        assert choice in script


def test_check_pypi_asks_for_every_pin_and_hides_local_sources(monkeypatch):
    check = _load_check_pypi()
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    env = check.pypi_only_env()
    assert "PIP_FIND_LINKS" not in env and env["PIP_CONFIG_FILE"] == os.devnull
    sets = check.install_sets(
        ROOT / "requirements/lock.txt", ROOT / "requirements", ROOT / "environment.yml"
    )
    asked = " ".join(" ".join(s.args) for s in sets)
    for name in ("lock.txt", "nodeps.txt", "runtime.txt", "dev.txt", "torch==2.13.0"):
        assert name in asked
    conda = check.conda_pins(ROOT / "environment.yml")
    assert "torch==2.13.0" in conda and len(conda) == len(_pins(ROOT / "environment.yml"))


def test_check_pypi_names_the_pin_pip_could_not_find(monkeypatch):
    check = _load_check_pypi()
    stderr = "ERROR: No matching distribution found for torch==2.13.0+cpu\n"

    def fake_run(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", stderr)

    monkeypatch.setattr(check.subprocess, "run", fake_run)
    assert check.resolve(check.InstallSet("x", []))[0] == ["torch==2.13.0+cpu"]


def _load_check_pypi():
    spec = importlib.util.spec_from_file_location("check_pypi", ROOT / "requirements/check_pypi.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_pypi"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_make_clean_never_removes_a_tracked_file(tmp_path):
    """In a scratch clone: every tracked file stays; the demo's untracked output goes; another
    profile's untracked records (hours of runs not yet committed) stay too."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    shutil.copy(ROOT / "Makefile", clone / "Makefile")  # the checkout's, committed or not
    tracked = subprocess.run(
        ["git", "-C", str(clone), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    demo_output = clone / "results/runs/demo/new.json"
    other = clone / "results/runs/sim/uncommitted.json"
    for path in (demo_output, other, clone / "reports/demo/extra.md"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    done = subprocess.run(["make", "-C", str(clone), "clean"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [p for p in tracked if not (clone / p).exists()] == []
    assert not demo_output.exists() and not (clone / "reports/demo/extra.md").exists()
    assert other.exists()
    assert (
        "removed 2 untracked file(s)" in done.stdout and "results/runs/demo/new.json" in done.stdout
    )


def _make_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*?)(?:\n\n|\n[^\s\\])", text, re.S | re.M).group(1)
    return [t for t in phony.replace("\\", " ").split() if t != "help"]


def test_make_help_and_the_readme_list_every_target():
    text = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    for target in _make_targets():
        assert re.search(rf"^{re.escape(target)}:.*## ", text, re.M), f"`make help` lacks {target}"
        assert (
            re.search(rf"`make {re.escape(target)}[ `\]/]", readme)
            or (f"`make {target}`" in readme)
            or re.search(rf"/ `make {re.escape(target)}`", readme)
        ), f"README lacks make {target}"


def test_data_choices_agree_between_help_readme_and_the_loader(capsys):
    from benchmark.cli import DATA_CHOICES, main
    from benchmark.data import DATA_SOURCES

    assert DATA_CHOICES == DATA_SOURCES
    readme = (ROOT / "README.md").read_text()
    assert "--data " + "|".join(DATA_SOURCES) in readme
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "{" + ",".join(DATA_SOURCES) + "}" in out
    assert "drcorl" in out and "(default: 0)" in out and "(default: demo)" in out


def test_top_level_help_speaks_to_users(capsys):
    from benchmark.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "make table" in out and "python -m benchmark run --algorithm" in out
    assert "imported lazily" not in out  # the module docstring is for developers
