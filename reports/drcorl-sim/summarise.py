"""Issue 12's real-simulator comparison: a table and a figure from the committed records.

    .venv/bin/python reports/drcorl-sim/summarise.py [--results results]

Reads results/runs/drcorl-sim*/ (records) and, when present, the runs' training logs under
results/work/ (the cosines of the "both" steps), and writes reports/drcorl-sim/table.md,
figure.png and figure.pdf. Nothing here trains or evaluates.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from benchmark.results import read_records

HERE = Path(__file__).resolve().parent
PROFILES = ("drcorl-sim", "drcorl-sim-code")
VARIANTS = (
    "DRCORL honest (policy_eval)",
    "DRCORL honest (iql)",
    "DRCORL honest (policy_eval, PID on policy_eval)",
    "DRCORL paper-code",
    "BC-Safe",
)


def variant(record: dict) -> str:
    if record["algorithm"] == "bc_safe":
        return "BC-Safe"
    config = record["config"]
    if config.get("switching") == "online":
        return "DRCORL paper-code"
    signal = config.get("cost_signal", "iql")
    if config.get("pid_signal", "critic") == "policy_eval":
        return f"DRCORL honest ({signal}, PID on policy_eval)"
    return f"DRCORL honest ({signal})"


LOGGED_COSINES = {
    "grad/cos": "cos_grad",
    "grad/cos_adam_delta": "cos_adam_delta",
    "cos_grad": "cos_grad",  # the names logs written before the `group/name` keys use
    "cos_adam_delta": "cos_adam_delta",
}


def both_cosines(results: Path, record: dict) -> dict[str, float]:
    """Median of the logged cos_grad / cos_adam_delta (the both-iterations the log sampled);
    replaced by the summary's mean over every both-iteration where a record has it."""
    path = results / "work" / record["profile"] / record.get("train_id", "") / "train_log.csv"
    if not path.exists():
        return {}
    values: dict[str, list[float]] = {"cos_grad": [], "cos_adam_delta": []}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            name = LOGGED_COSINES.get(row["metric"])
            if row["stage"] == "adapt" and name is not None:
                values[name].append(float(row["value"]))
    return {k: statistics.median(v) for k, v in values.items() if v}


def rows(results: Path) -> list[dict]:
    out = []
    for profile in PROFILES:
        for record in read_records(results, profile).records:
            summary = record.get("algorithm_summary", {})
            kappa = float(record["cost_limit"])
            row = {
                "variant": variant(record),
                "task": record["task"],
                "seed": record["seed"],
                "kappa": kappa,
                "reward": record["metrics"]["normalised_reward"]["mean"],
                "cost": record["metrics"]["normalised_cost"]["mean"],
                "raw_cost": record["metrics"]["cost"]["mean"],
                "estimate": summary.get("final_estimate"),
                "online_env_steps": record.get("online_env_steps", 0),
                "minutes": record["timing"].get("total", float("nan")) / 60.0,
                "stages": record["timing"].get("stages", {}),
                **{k: v for k, v in summary.items() if k.startswith("branch_")},
                **both_cosines(results, record),
            }
            # Means over every "both" iteration, where the run's summary has them.
            for key in ("cos_grad", "cos_adam_delta"):
                if f"mean_{key}" in summary:
                    row[key] = summary[f"mean_{key}"]
            selected = record.get("selected")
            if selected:
                row["selected_online_reward"] = selected["online"].get("normalised_reward")
                row["selected_online_cost"] = selected["online"].get("normalised_cost")
                row["selected_reward"] = selected["fixed_episodes"]["normalised_reward"]["mean"]
                row["selected_cost"] = selected["fixed_episodes"]["normalised_cost"]["mean"]
            out.append(row)
    order = {v: i for i, v in enumerate(VARIANTS)}
    return sorted(out, key=lambda r: (r["task"], order.get(r["variant"], 9), r["seed"]))


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(data: list[dict]) -> str:
    head = (
        "| task | variant | seed | reward | cost | estimate / kappa | branches after warm-up "
        "(reward/both/cost) | cos grad | cos Adam delta | selected: online r/c | selected: "
        "20 episodes r/c | online env steps | minutes |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in data:
        estimate = r["estimate"] / r["kappa"] if r["estimate"] is not None else None
        branches = (
            "/".join(_fmt(r.get(f"branch_{b}_after_warmup")) for b in ("reward", "both", "cost"))
            if "branch_reward_after_warmup" in r
            else "–"
        )
        online = (
            f"{_fmt(r['selected_online_reward'])}/{_fmt(r['selected_online_cost'])}"
            if "selected_reward" in r
            else "–"
        )
        fixed = (
            f"{_fmt(r['selected_reward'])}/{_fmt(r['selected_cost'])}"
            if "selected_reward" in r
            else "–"
        )
        lines.append(
            f"| {r['task']} | {r['variant']} | {r['seed']} | {_fmt(r['reward'])} | "
            f"{_fmt(r['cost'])} | {_fmt(estimate)} | {branches} | {_fmt(r.get('cos_grad'))} | "
            f"{_fmt(r.get('cos_adam_delta'))} | {online} | {fixed} | {r['online_env_steps']} | "
            f"{_fmt(r['minutes'], 1)} |"
        )
    return "\n".join(lines) + "\n"


def over_seeds(data: list[dict]) -> list[dict]:
    """Per (task, variant): seeds landed, mean reward and cost, how many seeds were safe."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in data:
        groups.setdefault((r["task"], r["variant"]), []).append(r)
    out = []
    for (task, name), runs in groups.items():
        estimates = [r["estimate"] / r["kappa"] for r in runs if r["estimate"] is not None]
        out.append(
            {
                "task": task,
                "variant": name,
                "seeds": sorted(r["seed"] for r in runs),
                "reward": statistics.mean(r["reward"] for r in runs),
                "cost": statistics.mean(r["cost"] for r in runs),
                "safe": sum(r["cost"] <= 1.0 for r in runs),
                "estimate": statistics.mean(estimates) if estimates else None,
            }
        )
    return out


def seeds_table(groups: list[dict]) -> str:
    lines = [
        "| task | variant | seeds | mean reward | mean cost | safe seeds | mean estimate / kappa |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in groups:
        seeds = ",".join(str(s) for s in g["seeds"])
        lines.append(
            f"| {g['task']} | {g['variant']} | {seeds} | {_fmt(g['reward'])} | "
            f"{_fmt(g['cost'])} | {g['safe']}/{len(g['seeds'])} | {_fmt(g['estimate'])} |"
        )
    return "\n".join(lines) + "\n"


def target(groups: list[dict], honest: str = "DRCORL honest (policy_eval)") -> str:
    """Issue 12's goal, checked on what landed: the honest default safe on every (task, seed)
    and its mean reward >= BC-Safe's on at least two tasks."""
    by = {(g["task"], g["variant"]): g for g in groups}
    tasks = sorted({g["task"] for g in groups if (g["task"], honest) in by})
    missed = {t: len(by[t, honest]["seeds"]) - by[t, honest]["safe"] for t in tasks}
    unsafe = [
        f"{t} ({missed[t]} of {len(by[t, honest]['seeds'])} seeds)" for t in tasks if missed[t]
    ]
    better = [
        f"{t} (but unsafe)" if missed[t] else t
        for t in tasks
        if (t, "BC-Safe") in by and by[t, honest]["reward"] >= by[t, "BC-Safe"]["reward"]
    ]
    reached = not unsafe and len(better) >= 2
    return (
        f"Target ({honest}: safe on every (task, seed), mean reward >= BC-Safe's on at least "
        f"two tasks): **{'reached' if reached else 'not reached'}**. "
        f"Unsafe: {', '.join(unsafe) or 'none'}. "
        f"Reward >= BC-Safe: {', '.join(better) or 'no task'} "
        f"(of {len(tasks)}: {', '.join(tasks)}).\n"
    )


def figure(data: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drcorl = [r for r in data if r["variant"].startswith("DRCORL honest")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = {"HalfCheetahVelocity": "o", "CarRun": "s", "PointGoal1": "^"}
    colours = {
        "DRCORL honest (policy_eval)": "tab:green",
        "DRCORL honest (iql)": "tab:red",
        "DRCORL honest (policy_eval, PID on policy_eval)": "tab:purple",
    }
    top = 1.0
    for r in drcorl:
        if r["estimate"] is None:
            continue
        x, y = r["estimate"] / r["kappa"], r["raw_cost"] / r["kappa"]
        top = max(top, x, y)
        ax1.scatter(x, y, marker=markers.get(r["task"], "o"), c=colours.get(r["variant"], "k"))
    ax1.plot([0, top * 1.05], [0, top * 1.05], "k--", lw=0.8, label="estimate = evaluated")
    ax1.axhline(1.0, color="grey", lw=0.6)
    ax1.axvline(1.0, color="grey", lw=0.6)
    for name, colour in colours.items():
        ax1.scatter([], [], c=colour, label=name)
    for task, marker in markers.items():
        if any(r["task"] == task for r in drcorl):
            ax1.scatter([], [], marker=marker, c="grey", label=task)
    ax1.set_xlabel("final offline estimate / kappa")
    ax1.set_ylabel("evaluated cost / kappa (20 fixed episodes)")
    ax1.set_title("Calibration of the switching signal")
    ax1.legend(fontsize=7)
    runs = [r for r in data if "branch_reward_after_warmup" in r and "honest" in r["variant"]]
    short = {"policy_eval, PID on policy_eval": "pe+pid"}
    labels = [
        f"{r['task'][:8]} {short.get(v := r['variant'].split('(')[-1][:-1], v)} s{r['seed']}"
        for r in runs
    ]
    bottom = [0.0] * len(runs)
    for branch, colour in (("reward", "tab:blue"), ("both", "tab:orange"), ("cost", "tab:red")):
        values = [r[f"branch_{branch}_after_warmup"] for r in runs]
        ax2.bar(range(len(runs)), values, bottom=bottom, color=colour, label=branch)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax2.set_xticks(range(len(runs)), labels, rotation=60, ha="right", fontsize=7)
    ax2.set_ylabel("fraction of adaptation iterations after warm-up")
    ax2.set_title("Branches taken (honest DRCORL)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    for suffix in ("png", "pdf"):
        fig.savefig(out.with_suffix(f".{suffix}"), dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results")
    args = parser.parse_args()
    data = rows(Path(args.results))
    groups = over_seeds(data)
    text = (
        "## Every run\n\n" + table(data) + "\n## Over seeds\n\n" + seeds_table(groups) + "\n"
        "Safe means normalised cost <= 1 on the 20 fixed episodes (C/kappa honest, C/(kappa+0.1)"
        " paper-code; the selected checkpoint is not counted).\n\n" + target(groups)
    )
    (HERE / "table.md").write_text(text)
    figure(data, HERE / "figure")
    print(text)


if __name__ == "__main__":
    main()
