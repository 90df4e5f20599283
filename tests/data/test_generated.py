"""Loading generated and toy data stays light (no torch, no PPO); old collector files are refused;
the import graph has no envs <-> data cycle."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import h5py
import pytest

from benchmark.data import generated
from benchmark.data.dataset import from_arrays
from benchmark.data.dsrl import write_dataset
from benchmark.data.toy import generate_dataset
from benchmark.errors import DatasetFormatError
from benchmark.tasks import get_task


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DSRL_DATASET_DIR", str(tmp_path / "dsrl"))
    return tmp_path / "cache"


def _write_generated(cache, version: str):
    task = get_task("ToyVelocity")
    data = generate_dataset("ToyVelocity", episodes=20)
    path = cache / "generated" / generated.dataset_file_name(task, data.num_episodes)
    attrs = {"source": "generated", "version": version}
    write_dataset(from_arrays("ToyVelocity", data.arrays(), source="generated"), path, attrs)
    return path


def _run(code: str, env_cache) -> subprocess.CompletedProcess:
    env_code = textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", env_code],
        capture_output=True,
        text=True,
        env={"BENCHMARK_CACHE_DIR": str(env_cache), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_loading_generated_and_toy_data_imports_no_torch(cache):
    _write_generated(cache, generated.COLLECTOR_VERSION)
    result = _run(
        """
        import sys
        from benchmark.data import load_dataset
        toy = load_dataset("ToyVelocity")
        from benchmark.data.generated import load_generated
        gen = load_generated("ToyVelocity")
        assert gen.num_episodes == 20 and toy.num_episodes > 0
        heavy = [m for m in ("torch", "benchmark.data.collect") if m in sys.modules]
        print("HEAVY", heavy)
        """,
        cache,
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_envs_and_data_do_not_import_each_other(cache):
    result = _run(
        """
        import sys
        import benchmark.envs, benchmark.envs_toy
        from benchmark.envs import make_vector_env
        make_vector_env("ToyPointGoal", 2).reset([0, 1])
        print("DATA", sorted(m for m in sys.modules if m.startswith("benchmark.data")))
        """,
        cache,
    )
    assert result.returncode == 0, result.stderr
    assert "DATA []" in result.stdout


def test_a_file_of_an_older_collector_is_refused_with_the_command(cache):
    path = _write_generated(cache, "1")
    with pytest.raises(DatasetFormatError, match="make data TASK=ToyVelocity") as error:
        generated.load_generated("ToyVelocity")
    assert "version 1" in str(error.value) and str(path) in str(error.value)
    with h5py.File(path, "r+") as handle:
        handle.attrs["version"] = generated.COLLECTOR_VERSION
    assert generated.load_generated("ToyVelocity").num_episodes == 20


def test_run_folders_carry_the_collector_version(cache):
    folder = generated.run_dir(get_task("AntVelocity"), 3)
    assert folder.name == f"AntVelocity-seed3-v{generated.COLLECTOR_VERSION}"
    revised = generated.run_dir(get_task("CarRun"), 3)  # recipe revision 3
    assert revised.name == f"CarRun-seed3-v{generated.COLLECTOR_VERSION}-r3"
    assert generated.dataset_file_name(get_task("CarRun"), 1000).endswith("-1000-r3.hdf5")
    assert generated.name_revision(generated.dataset_file_name(get_task("CarRun"), 10)) == 3
    assert generated.name_revision("Generated-CarRun-40-1000.hdf5") == 1


def test_a_file_of_an_older_recipe_revision_is_refused(cache, monkeypatch):
    import dataclasses

    path = _write_generated(cache, generated.COLLECTOR_VERSION)
    task = get_task("ToyVelocity")
    revised = dataclasses.replace(task, collect=dataclasses.replace(task.collect, revision=2))
    with pytest.raises(DatasetFormatError, match="revision 1 of ToyVelocity's recipe"):
        generated.load_generated(revised)
    with h5py.File(path, "r+") as handle:
        handle.attrs["recipe_revision"] = 2
    assert generated.load_generated(revised).num_episodes == 20
