"""`make bench`: the suite's speed benchmarks.

Each section is a module in this package with `run(quick: bool) -> list[dict]`; every dict is
one printed row (it must carry `section` and `what`). Results go to reports/bench/<section>.json
and a Markdown summary reports/bench/README.md.
"""

from __future__ import annotations

import importlib
import json
import platform

from benchmark.paths import reports_dir

SECTIONS: tuple[str, ...] = (
    "harness",
    "evaluation",
    "drcorl",
    "osrl",
    "caps_ccac",
    "collect",
)


def _format_row(row: dict) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


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
    summary = [f"# Speed benchmarks\n\nMachine: `{json.dumps(machine)}`\n"]
    for name in wanted:
        if name not in SECTIONS:
            print(f"unknown bench section {name!r}; known: {', '.join(SECTIONS)}")
            return 2
        try:
            module = importlib.import_module(f"benchmark.bench.{name}")
        except ModuleNotFoundError as error:
            print(f"[{name}] skipped: {error}")
            continue
        print(f"[{name}]", flush=True)
        rows = module.run(quick=args.quick)
        for row in rows:
            print("  " + _format_row(row), flush=True)
        (out / f"{name}.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
        summary.append(f"## {name}\n")
        summary.extend(f"- {_format_row(row)}" for row in rows)
        summary.append("")
    (out / "README.md").write_text("\n".join(summary) + "\n")
    return 0
