"""benchmark.data.dsrl: locate, read/validate, write, and download DSRL HDF5 files."""

from __future__ import annotations

import http.server
import os
import socket
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from benchmark.data import dsrl
from benchmark.data.dataset import KEYS, from_arrays
from benchmark.errors import (
    BenchmarkError,
    ConfigError,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    UnknownTaskError,
)
from benchmark.tasks import get_task

TASK = get_task("CarRun")  # obs 7, act 2: small synthetic files


def synthetic_arrays(task=TASK, lengths=(5, 3, 4), seed=0) -> dict[str, np.ndarray]:
    """Trajectories of the given lengths with consistent next observations."""
    rng = np.random.default_rng(seed)
    obs, next_obs, terminals, timeouts = [], [], [], []
    for i, length in enumerate(lengths):
        states = rng.normal(size=(length + 1, task.obs_dim)).astype(np.float32)
        obs.append(states[:-1])
        next_obs.append(states[1:])
        end = np.zeros(length, dtype=bool)
        end[-1] = True
        terminals.append(end if i % 2 else np.zeros(length, dtype=bool))
        timeouts.append(np.zeros(length, dtype=bool) if i % 2 else end)
    n = sum(lengths)
    return {
        "observations": np.concatenate(obs),
        "next_observations": np.concatenate(next_obs),
        "actions": rng.uniform(-1, 1, size=(n, task.act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "costs": rng.integers(0, 2, size=n).astype(np.float32),
        "terminals": np.concatenate(terminals),
        "timeouts": np.concatenate(timeouts),
    }


def write_raw(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays as-is (no validation), to build malformed files."""
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)
    return path


@pytest.fixture
def dsrl_cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "dsrl-cache"
    monkeypatch.setenv("DSRL_DATASET_DIR", str(folder))
    return folder


def assert_useful(error: BaseException, *fragments: str) -> None:
    message = str(error)
    assert isinstance(error, BenchmarkError)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --- locate / load ----------------------------------------------------------------------------


def test_unknown_task():
    with pytest.raises(UnknownTaskError) as info:
        dsrl.locate("NoSuchTask")
    assert_useful(info.value, "NoSuchTask", "CarGoal1")


def test_toy_task_has_no_dsrl_file():
    with pytest.raises(ConfigError) as info:
        dsrl.locate("ToyVelocity")
    assert_useful(info.value, "toy", "--data toy")


def test_missing_file_lists_where_it_looked_and_how_to_get_it(dsrl_cache):
    with pytest.raises(DatasetNotFoundError) as info:
        dsrl.load_dsrl("CarRun")
    assert_useful(
        info.value,
        str(dsrl_cache / "SafetyCarRun-v0-40-651.hdf5"),
        "python -m benchmark data download CarRun",
        "--data-path",
        "make data TASK=CarRun",
        "--data generated",
        "huggingface.co",
    )


def test_load_dsrl_reads_the_cached_file_without_importing_dsrl(dsrl_cache):
    arrays = synthetic_arrays()
    dataset = from_arrays("CarRun", arrays, source="dsrl")
    path = dsrl.write_dataset(dataset, dsrl_cache / TASK.dsrl_file)
    assert dsrl.locate("CarRun") == path
    imported_before = "dsrl" in sys.modules
    loaded = dsrl.load_dsrl("CarRun")
    assert imported_before or "dsrl" not in sys.modules
    assert loaded.source == "dsrl" and loaded.path == str(path)
    assert loaded.sha256 == dataset.sha256
    assert loaded.num_episodes == 3


def test_missing_explicit_path(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        dsrl.read_dataset(tmp_path / "nope.hdf5", TASK, source="path")
    assert_useful(info.value, "nope.hdf5", "does not exist")


def test_a_directory_as_the_path_says_it_is_a_directory(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        dsrl.read_dataset(tmp_path, TASK, source="path")
    assert_useful(info.value, "is a directory, not an HDF5 file", TASK.dsrl_file)
    assert "does not exist" not in str(info.value)


def test_a_dsrl_file_given_to_the_wrong_task_names_both_tasks_sizes(tmp_path):
    hopper = get_task("HopperVelocity")
    path = tmp_path / hopper.dsrl_file
    dsrl.write_dataset(from_arrays(hopper.name, synthetic_arrays(hopper), source="dsrl"), path)
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(path, TASK, source="path")
    assert_useful(
        info.value,
        "observations of size 11 and actions of size 3",
        "CarRun has observations of size 7 and actions of size 2",
        "the file of HopperVelocity (observations 11, actions 3)",
    )


# --- write / read round trip ------------------------------------------------------------------


def test_round_trip_is_identical(tmp_path):
    arrays = synthetic_arrays(lengths=(4, 6, 2, 7))
    dataset = from_arrays("CarRun", arrays, source="generated", attrs={"seed": 3})
    path = dsrl.write_dataset(dataset, tmp_path / "carrun-gen.hdf5", {"policy": "mix"})
    loaded = dsrl.read_dataset(path, TASK, source="generated")
    for key in KEYS:
        np.testing.assert_array_equal(getattr(loaded, key), getattr(dataset, key))
        assert getattr(loaded, key).dtype == getattr(dataset, key).dtype
    assert loaded.sha256 == dataset.sha256
    assert loaded.attrs["seed"] == 3 and loaded.attrs["policy"] == "mix"
    assert loaded.attrs["source"] == "generated" and loaded.attrs["task"] == "CarRun"
    with h5py.File(path, "r") as handle:  # DSRL layout: only the 7 datasets, gzip, dtypes
        assert sorted(handle.keys()) == sorted(KEYS)
        assert handle["observations"].compression == "gzip"
        assert handle["rewards"].dtype == np.float32 and handle["terminals"].dtype == bool
    assert [p.name for p in tmp_path.iterdir()] == ["carrun-gen.hdf5"]  # no temp file left


def test_round_trip_of_a_toy_dataset(tmp_path):
    toy = pytest.importorskip("benchmark.data.toy")
    dataset = toy.generate_dataset("ToyVelocity", episodes=20, seed=0)
    path = dsrl.write_dataset(dataset, tmp_path / "toy.hdf5")
    loaded = dsrl.read_dataset(path, "ToyVelocity", source="toy")
    assert loaded.sha256 == dataset.sha256
    for key in KEYS:
        np.testing.assert_array_equal(getattr(loaded, key), getattr(dataset, key))


def test_written_file_has_the_usual_permissions(tmp_path):
    dataset = from_arrays("CarRun", synthetic_arrays(), source="generated")
    path = dsrl.write_dataset(dataset, tmp_path / "a.hdf5")
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_refuses_generated_data_under_a_dsrl_name(tmp_path):
    dataset = from_arrays("CarRun", synthetic_arrays(), source="generated")
    with pytest.raises(ConfigError) as info:
        dsrl.write_dataset(dataset, tmp_path / TASK.dsrl_file)
    assert_useful(info.value, "refusing", TASK.dsrl_file)
    assert not list(tmp_path.iterdir())


def test_column_shapes_n1_are_squeezed_and_int_flags_accepted(tmp_path):
    arrays = synthetic_arrays()
    for key in ("rewards", "costs", "terminals"):
        arrays[key] = arrays[key].reshape(-1, 1)
    arrays["timeouts"] = arrays["timeouts"].astype(np.int8)
    arrays["observations"] = arrays["observations"].astype(np.float64)
    loaded = dsrl.read_dataset(write_raw(tmp_path / "a.hdf5", arrays), TASK, source="path")
    assert loaded.rewards.shape == (12,) and loaded.terminals.shape == (12,)
    assert loaded.timeouts.dtype == bool and loaded.observations.dtype == np.float32


# --- bad files --------------------------------------------------------------------------------


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.hdf5"
    path.write_bytes(b"this is not an HDF5 file at all" * 10)
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(path, TASK, source="path")
    assert_useful(info.value, str(path), "corrupt or truncated", "download or generate it again")


def test_truncated_file(tmp_path):
    good = dsrl.write_dataset(
        from_arrays("CarRun", synthetic_arrays(lengths=(200,) * 20), source="generated"),
        tmp_path / "good.hdf5",
    )
    data = good.read_bytes()
    path = tmp_path / "truncated.hdf5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(path, TASK, source="path")
    assert_useful(info.value, "corrupt or truncated")


def test_missing_key(tmp_path):
    arrays = synthetic_arrays()
    del arrays["costs"]
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(write_raw(tmp_path / "a.hdf5", arrays), TASK, source="path")
    assert_useful(info.value, "missing the key(s) ['costs']", "observations")


@pytest.mark.parametrize("key,dim", [("observations", 8), ("next_observations", 6)])
def test_wrong_obs_dim(tmp_path, key, dim):
    arrays = synthetic_arrays()
    arrays[key] = np.zeros((12, dim), dtype=np.float32)
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(write_raw(tmp_path / "a.hdf5", arrays), TASK, source="path")
    assert_useful(info.value, f"{key} of size {dim}", "CarRun has observations of size 7")


def test_wrong_act_dim(tmp_path):
    arrays = synthetic_arrays()
    arrays["actions"] = np.zeros((12, 6), dtype=np.float32)
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(write_raw(tmp_path / "a.hdf5", arrays), TASK, source="path")
    assert_useful(info.value, "actions of size 6", "CarRun has", "actions of size 2")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("key", ["observations", "rewards", "costs"])
def test_nan_and_inf(tmp_path, key, bad):
    arrays = synthetic_arrays()
    arrays[key] = arrays[key].copy()
    if arrays[key].ndim == 2:
        arrays[key][7, 3] = bad
    else:
        arrays[key][7] = bad
    arrays[key][9] = bad  # a later bad row: the message names the first
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(write_raw(tmp_path / "a.hdf5", arrays), TASK, source="path")
    assert_useful(info.value, f"column {key!r}", "NaN or Inf", "row 7")


def test_unequal_lengths(tmp_path):
    arrays = synthetic_arrays()
    arrays["actions"] = arrays["actions"][:-1]
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(write_raw(tmp_path / "a.hdf5", arrays), TASK, source="path")
    assert_useful(info.value, "different lengths", "'actions': 11")


def test_trailing_rows_without_terminal_or_timeout(tmp_path):
    arrays = synthetic_arrays(lengths=(5, 3, 4))
    arrays["timeouts"][-1] = False
    arrays["terminals"][-1] = False
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(write_raw(tmp_path / "a.hdf5", arrays), TASK, source="path")
    assert_useful(info.value, "rows 8..11 end no trajectory", "timeouts=True")


def test_flags_outside_zero_one(tmp_path):
    arrays = synthetic_arrays()
    arrays["terminals"] = arrays["terminals"].astype(np.int64) * 2
    with pytest.raises(DatasetFormatError) as info:
        dsrl.read_dataset(write_raw(tmp_path / "a.hdf5", arrays), TASK, source="path")
    assert_useful(info.value, "'terminals'", "{0, 1}")


# --- download ---------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    good: bytes = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/good.hdf5":
            self._send(self.good, len(self.good))
        elif self.path == "/truncated.hdf5":
            self._send(self.good[: len(self.good) // 2], len(self.good))
            self.close_connection = True
        elif self.path == "/garbage.hdf5":
            body = b"<html>not found, but with status 200</html>"
            self._send(body, len(body))
        else:
            self.send_error(404, "Not Found")

    def _send(self, body: bytes, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    source = tmp_path / "served.hdf5"
    dsrl.write_dataset(
        from_arrays("CarRun", synthetic_arrays(lengths=(50,) * 10), source="dsrl"), source
    )
    handler = type("Handler", (_Handler,), {"good": source.read_bytes()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_good_file(server, dsrl_cache):
    path = dsrl.download("CarRun", url=f"{server}/good.hdf5")
    assert path == dsrl_cache / TASK.dsrl_file
    assert dsrl.load_dsrl("CarRun").num_episodes == 10
    assert [p.name for p in dsrl_cache.iterdir()] == [TASK.dsrl_file]


@pytest.mark.parametrize(
    "name,fragments",
    [
        ("missing.hdf5", ("HTTP 404", "nothing was saved", "huggingface.co")),
        ("truncated.hdf5", ("was cut off", "nothing was saved")),
        ("garbage.hdf5", ("not a valid DSRL dataset", "nothing was saved")),
    ],
)
def test_failed_download_leaves_nothing_behind(server, dsrl_cache, name, fragments):
    with pytest.raises(DownloadError) as info:
        dsrl.download("CarRun", url=f"{server}/{name}")
    assert_useful(info.value, f"{server}/{name}", *fragments)
    assert not dsrl_cache.exists() or not list(dsrl_cache.iterdir())


def test_connection_refused_leaves_nothing_behind(dsrl_cache):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.hdf5"
    with pytest.raises(DownloadError) as info:
        dsrl.download("CarRun", url=url)
    assert_useful(info.value, url, "failed", "nothing was saved")
    assert not list(dsrl_cache.iterdir())


def test_cli_download_failure_is_one_line_exit_2(server, dsrl_cache, capsys):
    from benchmark.cli import main

    code = main(["data", "download", "CarRun", "--url", f"{server}/missing.hdf5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: download of") and "HTTP 404" in err[-1]


def test_cli_download_prints_the_saved_file(server, dsrl_cache, capsys):
    from benchmark.cli import main

    assert main(["data", "download", "CarRun", "--url", f"{server}/good.hdf5"]) == 0
    assert "10 trajectories" in capsys.readouterr().out
    assert main(["data", "download", "CarRun"]) == 0  # present: no network touched
    assert "already present" in capsys.readouterr().out


def test_dsrl_url_reads_the_installed_infos_without_importing_dsrl():
    imported_before = "dsrl" in sys.modules
    url = dsrl.dsrl_url("CarGoal1")
    assert url.endswith("/SafetyCarGoal1Gymnasium-v0-120-1671.hdf5")
    assert imported_before or "dsrl" not in sys.modules


def test_download_removes_the_part_file_a_killed_download_left(server, dsrl_cache):
    import os
    import time

    dsrl_cache.mkdir(parents=True)
    stale = dsrl_cache / f".{TASK.dsrl_file}.abc123.part"
    fresh = dsrl_cache / f".{TASK.dsrl_file}.def456.part"  # another live download
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written")
    old = time.time() - 2 * dsrl.STALE_PART_SECONDS
    os.utime(stale, (old, old))
    dsrl.download("CarRun", url=f"{server}/good.hdf5")
    assert not stale.exists() and fresh.exists()


def test_cli_download_over_a_corrupt_cached_file_says_so_and_fetches_again(
    server, dsrl_cache, capsys
):
    from benchmark.cli import main

    dsrl_cache.mkdir(parents=True)
    (dsrl_cache / TASK.dsrl_file).write_bytes(b"not an hdf5 file")
    assert main(["data", "download", "CarRun", "--url", f"{server}/good.hdf5"]) == 0
    out = capsys.readouterr().out
    assert "is corrupt" in out and "already present" not in out and "saved" in out
    assert dsrl.load_dsrl("CarRun").num_episodes == 10
    assert main(["data", "download", "CarRun"]) == 0
    out = capsys.readouterr().out
    assert "already present" in out and "valid" in out


def test_a_failed_download_over_a_corrupt_file_says_to_delete_it(server, dsrl_cache):
    dsrl_cache.mkdir(parents=True)
    (dsrl_cache / TASK.dsrl_file).write_bytes(b"not an hdf5 file")
    with pytest.raises(DownloadError) as info:
        dsrl.download("CarRun", url=f"{server}/missing.hdf5")
    assert_useful(info.value, "HTTP 404", "is corrupt", "delete it")
