"""DSRL HDF5 files: locate, read and validate, write, and an opt-in download.

Reading uses h5py only: `import dsrl` would pull in the simulators and create DSRL's cache
folder as a side effect (baselines.md 1.4), so nothing on the data path imports it. The checks
reimplement DSRL's `OfflineEnv.get_dataset` (the seven keys, obs/act dims, (N,1) -> (N,),
float32 casting) and add what it leaves silent: NaN/Inf, unequal lengths, and trailing rows
that end no trajectory (DSRL drops those without a word; baselines.md 1.3).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from benchmark import atomic
from benchmark.data.dataset import FLAG_KEYS, FLOAT_KEYS, KEYS, Dataset, from_arrays
from benchmark.errors import (
    BenchmarkError,
    ConfigError,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
)
from benchmark.paths import dsrl_dir
from benchmark.tasks import ALL_DSRL_TASKS, DSRL_TASKS, TaskSpec, get_task, task_for_dsrl_file

# The GitHub dsrl (HEAD) serves the same file names from HuggingFace; pip's dsrl 0.1.0 still
# points at data.offline-saferl.org, which users report down (baselines.md 1.4).
HUGGINGFACE_BASE = "https://huggingface.co/datasets/YYY-45/DSRL/resolve/main/"
_CHUNK_ROWS = 1 << 20  # NaN scan block: bounds the temporary mask on multi-GB files
_DOWNLOAD_BLOCK = 1 << 20


def _as_task(task: TaskSpec | str) -> TaskSpec:
    return get_task(task) if isinstance(task, str) else task


def _dsrl_file(task: TaskSpec) -> str:
    if task.dsrl_file is None:
        raise ConfigError(
            f"{task.name} is a toy task and has no DSRL file; use `--data toy` for its data"
        )
    return task.dsrl_file


def how_to_obtain(task: TaskSpec) -> str:
    """The ways a user can supply a missing DSRL file, for error messages."""
    name = _dsrl_file(task)
    generate = (
        f"; or generate data with `make data TASK={task.name}` and use `--data generated`."
        if task.collect is not None
        else f" ({task.name} has no collection recipe: the suite cannot generate its data)."
    )
    return (
        f"To get it: run `python -m benchmark data download {task.name}` (pip's dsrl 0.1.0 "
        f"points at the old host data.offline-saferl.org, which is often down; the GitHub dsrl "
        f"points at HuggingFace: add `--url {HUGGINGFACE_BASE}{name}`); or copy {name} into "
        f"{dsrl_dir()} (set $DSRL_DATASET_DIR to use another folder); or pass an explicit file "
        f"(`--data-path FILE` for runs, `--path FILE` for `data card`)" + generate
    )


def locate(task: TaskSpec | str) -> Path:
    """The task's DSRL file in DSRL's cache (`$DSRL_DATASET_DIR`, else `~/.dsrl/datasets`)."""
    task = _as_task(task)
    name = _dsrl_file(task)
    folder = dsrl_dir()
    path = folder / name
    if path.is_file():
        return path
    where = (
        "set by $DSRL_DATASET_DIR"
        if os.environ.get("DSRL_DATASET_DIR")
        else "DSRL's default folder; $DSRL_DATASET_DIR is unset"
    )
    raise DatasetNotFoundError(
        f"no DSRL dataset for {task.name}: looked for {path} ({where}). " + how_to_obtain(task)
    )


def load_dsrl(task: TaskSpec | str) -> Dataset:
    """The real DSRL dataset of `task`, from DSRL's cache; an error if it is not there."""
    task = _as_task(task)
    return read_dataset(locate(task), task, source="dsrl")


# --- reading and validation -------------------------------------------------------------------


def read_dataset(path: str | os.PathLike, task: TaskSpec | str, source: str) -> Dataset:
    """Read and validate a DSRL-format HDF5 file for `task`; every defect is a clear error."""
    task = _as_task(task)
    path = Path(path).expanduser()
    if path.is_dir():
        example = path / (task.dsrl_file or f"Generated-{task.name}-....hdf5")
        raise DatasetNotFoundError(
            f"dataset path {path} is a directory, not an HDF5 file; pass the file itself "
            f"(e.g. {example})"
        )
    if not path.is_file():
        raise DatasetNotFoundError(
            f"dataset file {path} does not exist; check the path"
            + (f". {how_to_obtain(task)}" if not task.is_toy else "")
        )
    try:
        with h5py.File(path, "r") as handle:
            present = sorted(k for k in handle if isinstance(handle[k], h5py.Dataset))
            missing = [k for k in KEYS if k not in present]
            if missing:
                raise DatasetFormatError(
                    f"{path} is missing the key(s) {missing} (it holds {present}); a DSRL file "
                    f"needs all of {list(KEYS)} as top-level datasets. Regenerate or re-download it"
                )
            raw = {key: handle[key][()] for key in KEYS}
            attrs = {key: _plain(value) for key, value in handle.attrs.items()}
    except OSError as error:  # h5py's error for corrupt, truncated and non-HDF5 files
        raise DatasetFormatError(
            f"cannot read {path} as HDF5 ({error}); the file is corrupt or truncated. "
            f"Delete it and download or generate it again"
        ) from error
    arrays = _validate(raw, task, path, attrs)
    return from_arrays(task.name, arrays, source=source, path=str(path), attrs=attrs)


def _validate(
    raw: dict[str, np.ndarray], task: TaskSpec, path: Path, attrs: dict | None = None
) -> dict[str, np.ndarray]:
    fix = "Regenerate or re-download the file"
    arrays: dict[str, np.ndarray] = {}
    for key, value in raw.items():
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise DatasetFormatError(
                f"{path}: column {key!r} has dtype {value.dtype}, not numeric; {fix}"
            )
        if key not in ("observations", "next_observations", "actions"):
            if value.ndim == 2 and value.shape[1] == 1:
                value = value[:, 0]  # DSRL squeezes (N, 1) columns
            if value.ndim != 1:
                raise DatasetFormatError(
                    f"{path}: column {key!r} has shape {value.shape}; expected (N,) or (N, 1)"
                )
        arrays[key] = value
    dims = {"observations": task.obs_dim, "next_observations": task.obs_dim}
    dims["actions"] = task.act_dim
    for key, dim in dims.items():
        shape = arrays[key].shape
        if len(shape) != 2 or shape[1] != dim:
            raise DatasetFormatError(_size_mismatch(path, task, arrays, attrs or {}))
    lengths = {key: int(value.shape[0]) for key, value in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DatasetFormatError(f"{path}: columns have different lengths {lengths}; {fix}")
    if lengths["rewards"] == 0:
        raise DatasetFormatError(f"{path} holds no transitions; {fix}")
    for key in FLOAT_KEYS:
        bad = _first_nonfinite_row(arrays[key])
        if bad is not None:
            raise DatasetFormatError(
                f"{path}: column {key!r} holds NaN or Inf (first at row {bad}); {fix}"
            )
    for key in FLAG_KEYS:
        flags = arrays[key]
        if flags.dtype != bool:
            if not np.isin(flags, (0, 1)).all():
                raise DatasetFormatError(
                    f"{path}: flag column {key!r} holds values not in {{0, 1}}"
                )
            arrays[key] = flags.astype(bool)
    done = np.logical_or(arrays["terminals"], arrays["timeouts"])
    if not done[-1]:
        last = np.flatnonzero(done)
        start = int(last[-1]) + 1 if last.size else 0
        raise DatasetFormatError(
            f"{path}: rows {start}..{len(done) - 1} end no trajectory (the last row has neither "
            f"terminals nor timeouts set); DSRL would silently drop them. Set timeouts=True on "
            f"the last row of a cut-off trajectory, or drop those rows"
        )
    return arrays


def _width(array: np.ndarray) -> str:
    return str(array.shape[1]) if array.ndim == 2 else f"shape {array.shape}"


def _size_mismatch(path: Path, task: TaskSpec, arrays: dict, attrs: dict) -> str:
    """A wrong-task message that names both tasks' sizes: the wanted one's and the file's."""
    obs, act = _width(arrays["observations"]), _width(arrays["actions"])
    nxt = _width(arrays["next_observations"])
    held = f"observations of size {obs}" + (
        f", next_observations of size {nxt}" if nxt != obs else ""
    )
    message = (
        f"{path} holds {held} and actions of size {act}, but task "
        f"{task.name} has observations of size {task.obs_dim} and actions of size "
        f"{task.act_dim}"
    )
    owner = _likely_owner(path, attrs, obs, act)
    if owner is not None and owner.name != task.name:
        message += (
            f"; it looks like the file of {owner.name} (observations {owner.obs_dim}, actions "
            f"{owner.act_dim}): run it with that task, or pass {task.name}'s own file"
        )
    else:
        message += f"; is this the file of another task? Pass {task.name}'s own file"
    return message


def _likely_owner(path: Path, attrs: dict, obs: str, act: str) -> TaskSpec | None:
    """The task a file belongs to: by DSRL file name, its `task` attribute, or its sizes
    among the DRCORL table's tasks (whose sizes are cached)."""
    owner = task_for_dsrl_file(path.name)
    if owner is None and isinstance(attrs.get("task"), str):
        with contextlib.suppress(BenchmarkError):
            owner = get_task(attrs["task"])
    if owner is None:
        with contextlib.suppress(BenchmarkError, ImportError, OSError):
            owner = next(
                (t for t in DSRL_TASKS if (str(t.obs_dim), str(t.act_dim)) == (obs, act)), None
            )
    return owner


def _first_nonfinite_row(values: np.ndarray) -> int | None:
    """Index of the first row holding NaN or Inf, scanning in blocks to bound memory."""
    if values.dtype.kind not in "fc":
        return None
    for start in range(0, values.shape[0], _CHUNK_ROWS):
        block = values[start : start + _CHUNK_ROWS]
        finite = np.isfinite(block)
        if finite.ndim > 1:
            finite = finite.reshape(finite.shape[0], -1).all(axis=1)
        if not finite.all():
            return start + int(np.argmin(finite))
    return None


def _plain(value: Any) -> Any:
    """An HDF5 attribute as a plain JSON-able Python value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- writing ----------------------------------------------------------------------------------


def write_dataset(dataset: Dataset, path: str | os.PathLike, attrs: dict | None = None) -> Path:
    """Write `dataset` as a DSRL-format HDF5 file, atomically.

    Float32 columns, bool flags, gzip, metadata only in HDF5 attributes (an extra dataset would
    be loaded by DSRL's `get_dataset` and carried along; datasets.md 1.4). The file is written
    next to its target and moved into place when complete.
    """
    path = Path(path).expanduser()
    dsrl_names = {t.dsrl_file for t in ALL_DSRL_TASKS}
    if path.name in dsrl_names and dataset.source != "dsrl":
        # A generated file under DSRL's name would pose as the real data (datasets.md 3.3).
        raise ConfigError(
            f"refusing to write {dataset.source} data under DSRL's file name {path.name}; "
            f"choose another name"
        )
    metadata = {"task": dataset.task, "source": dataset.source, **dataset.attrs, **(attrs or {})}
    # Same data -> same bytes: no HDF5 timestamps, attributes in sorted order.
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        for key in KEYS:
            value = getattr(dataset, key)
            dtype = np.float32 if key in FLOAT_KEYS else bool
            handle.create_dataset(
                key,
                data=np.asarray(value, dtype=dtype),
                compression="gzip",
                chunks=True,
                track_times=False,
            )
        for key in sorted(metadata):
            handle.attrs[key] = _attr_value(metadata[key])
    return path


def atomic_path(path: str | os.PathLike):
    """A temporary `.part` file next to `path` that replaces it when the block ends cleanly
    (benchmark.atomic: removed on any error, permissions as a plain `open` gives them)."""
    return atomic.atomic_path(path, suffix=".part")


def _attr_value(value: Any) -> Any:
    """HDF5 attributes hold scalars, strings and arrays; anything nested goes in as JSON."""
    if (
        value is None
        or isinstance(value, dict)
        or (
            isinstance(value, list | tuple)
            and any(isinstance(v, list | tuple | dict) for v in value)
        )
    ):
        return json.dumps(value)
    return value


# --- download ---------------------------------------------------------------------------------


def dsrl_url(task: TaskSpec | str) -> str:
    """The URL the installed dsrl package would download `task` from (its `infos.py`)."""
    task = _as_task(task)
    name = _dsrl_file(task)
    if task.dsrl_url is None:
        raise DownloadError(
            f"the installed dsrl has no URL for {task.name}; pass one with --url "
            f"(e.g. {HUGGINGFACE_BASE}{name})"
        )
    return task.dsrl_url


def download(task: TaskSpec | str, url: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch `task`'s DSRL file into DSRL's cache; the file appears only when complete and valid.

    Streams into a temporary file in the target folder with a progress bar, checks the byte
    count against Content-Length, validates the HDF5 with `read_dataset`, then `os.replace`s it
    into place. Any failure raises `DownloadError` and leaves nothing behind.
    """
    task = _as_task(task)
    name = _dsrl_file(task)
    target = dsrl_dir() / name
    remove_stale_parts(target)
    corrupt = cached_problem(target, task) if target.is_file() else None
    if target.is_file() and corrupt is None:
        return target
    url = url or dsrl_url(task)
    alternative = (
        f"Check your connection and the URL; the GitHub dsrl serves the file from HuggingFace "
        f"(`--url {HUGGINGFACE_BASE}{name}`), or copy the file to {target} by hand"
    )
    if corrupt is not None:
        alternative += f". The cached {target} is corrupt ({corrupt}): delete it"
    try:
        with atomic_path(target) as tmp:
            received, total = _fetch(url, tmp, name, timeout)
            if total is not None and received != total:
                raise DownloadError(
                    f"download of {url} was cut off: got {received} of {total} bytes; nothing "
                    f"was saved. Try again. {alternative}"
                )
            try:
                read_dataset(tmp, task, source="dsrl")
            except DatasetFormatError as error:
                raise DownloadError(
                    f"the file downloaded from {url} is not a valid DSRL dataset for "
                    f"{task.name} ({error}); nothing was saved. {alternative}"
                ) from error
    except urllib.error.HTTPError as error:
        raise DownloadError(
            f"download of {url} failed: HTTP {error.code} {error.reason}; nothing was saved. "
            f"{alternative}"
        ) from error
    except DownloadError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise DownloadError(
            f"download of {url} failed ({error}); nothing was saved. {alternative}"
        ) from error
    return target


STALE_PART_SECONDS = 600.0
"""A `.part` file untouched this long belongs to a download that died (a live one writes a
block every few seconds)."""


def remove_stale_parts(target: Path, min_age: float = STALE_PART_SECONDS) -> list[Path]:
    """Remove the `.part` files a killed download of `target` left in its folder.

    `benchmark.atomic.remove_stale_temporaries` removes every temporary of a name; a download
    running in another process right now must keep its file, so only the ones not written to
    for `min_age` seconds go (the same name pattern: `.<name>.*.part`).
    """
    folder, now = target.parent, time.time()
    if not folder.is_dir():
        return []
    stale = []
    for part in folder.glob(f".{target.name}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            if now - part.stat().st_mtime >= min_age:
                part.unlink()
                stale.append(part)
    return stale


def cached_problem(path: Path, task: TaskSpec) -> str | None:
    """Why the cached file at `path` is not a valid dataset for `task` (None when it is)."""
    try:
        read_dataset(path, task, source="dsrl")
    except (DatasetFormatError, DatasetNotFoundError) as error:
        return " ".join(str(error).split())
    return None


def _fetch(url: str, path: Path, name: str, timeout: float) -> tuple[int, int | None]:
    """Stream `url` into `path` with a progress bar; (bytes received, Content-Length or None)."""
    from tqdm import tqdm

    with open(path, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length is not None else None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False) as bar:
            while block := response.read(_DOWNLOAD_BLOCK):
                out.write(block)
                received += len(block)
                bar.update(len(block))
    return received, total


def cli_download(args) -> int:
    """`python -m benchmark data download TASK [--url URL]`."""
    task = get_task(args.task)
    target = dsrl_dir() / _dsrl_file(task)
    for part in remove_stale_parts(target):
        print(f"{task.name}: removed {part}, left by a download that was killed")
    if target.is_file():
        problem = cached_problem(target, task)
        if problem is None:
            dataset = read_dataset(target, task, source="dsrl")
            print(
                f"{task.name}: already present at {target} and valid ({dataset.num_episodes} "
                f"trajectories; file sha256 {dataset.file_sha256}); delete it to download again"
            )
            return 0
        print(f"{task.name}: the cached {target} is corrupt ({problem}); downloading it again")
    path = download(task, url=args.url)
    dataset = read_dataset(path, task, source="dsrl")
    print(
        f"{task.name}: saved {path} ({len(dataset)} transitions, {dataset.num_episodes} "
        f"trajectories, content sha256 {dataset.content_sha256[:16]}, "
        f"file sha256 {dataset.file_sha256})"
    )
    return 0
