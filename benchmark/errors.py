"""The suite's error types.

Every error a user can cause (bad task name, bad data, bad config) is a `BenchmarkError`
subclass whose message says what was wrong and what to do; the CLI prints it on one line
and exits 2.
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """Base class of every error the suite raises on bad input."""


class UnknownTaskError(BenchmarkError, KeyError):
    """A task name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnknownAlgorithmError(BenchmarkError, KeyError):
    """An algorithm name that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(BenchmarkError, FileNotFoundError):
    """No dataset file where the suite looked for one."""


class DatasetFormatError(BenchmarkError, ValueError):
    """A dataset file that is unreadable, truncated, mis-shaped or holds NaN/Inf."""


class DownloadError(BenchmarkError, OSError):
    """A dataset download that failed or was interrupted."""


class ConfigError(BenchmarkError, ValueError):
    """A bad config key or value, profile or command-line override."""


class StorageError(BenchmarkError, OSError):
    """A write that failed for lack of space (full disk, quota); nothing half-written is kept."""


class BusyError(BenchmarkError, RuntimeError):
    """A run or collection another process is already working on (its folder is locked)."""


class RecordError(BenchmarkError, ValueError):
    """A run record that fails schema validation."""


class ReportError(BenchmarkError, ValueError):
    """Records that cannot be combined into one report cell (mixed protocols, sources...)."""
