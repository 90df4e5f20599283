"""`make bench`: the suite's speed benchmarks.

Each section is a module in this package with `run(quick: bool) -> list[dict]`; every dict is
one printed row (it must carry `section` and `what`). Results go to reports/bench/<section>.json
and a Markdown summary reports/bench/README.md. A section whose `run` also takes `device` and
`tiny` (`gpu`) gets the command line's `--device` / `--tiny`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import platform

from benchmark.errors import ConfigError
from benchmark.paths import reports_dir

SECTIONS: tuple[str, ...] = (
    "demo",
    "harness",
    "evaluation",
    "drcorl",
    "osrl",
    "caps_ccac",
    "collect",
    "phase_a",
    "gpu",
)


def _format_row(row: dict) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def _write_summary(out) -> None:
    """reports/bench/README.md from every section's latest JSON, whichever run wrote it."""
    lines = ["# Speed benchmarks", "", "Written by `make bench` (`python -m benchmark bench`).", ""]
    for name in SECTIONS:
        path = out / f"{name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            lines += [f"## {name}", "", f"Machine: `{json.dumps(data['machine'])}`", ""]
            lines += [f"- {_format_row(row)}" for row in data["rows"]] + [""]
    (out / "README.md").write_text("\n".join(lines))


def _section_options(run, args) -> dict:
    """The optional command-line settings a section's `run` accepts (device, tiny)."""
    accepted = inspect.signature(run).parameters
    options = {"device": getattr(args, "device", None), "tiny": getattr(args, "tiny", False)}
    return {k: v for k, v in options.items() if k in accepted}


def cli_bench(args) -> int:
    import torch

    torch.set_num_threads(1)
    wanted = args.only or list(SECTIONS)
    out = reports_dir() / "bench"
    out.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "threads": 1,
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
    }
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        raise ConfigError(f"unknown bench section(s) {unknown}; known: {', '.join(SECTIONS)}")
    for name in wanted:
        module = importlib.import_module(f"benchmark.bench.{name}")
        print(f"[{name}]", flush=True)
        rows = module.run(quick=args.quick, **_section_options(module.run, args))
        for row in rows:
            print("  " + _format_row(row), flush=True)
        (out / f"{name}.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    _write_summary(out)
    return 0
