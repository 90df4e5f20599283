"""reports/datasets/README.md from the generated datasets' cards in this folder (the
collector writes `<task>-generated.{json,png}` here, `make data TASK=...`, `make data-all`):
per task, whether the dataset meets the four criteria of docs/datasets.md and, where it does
not, which criterion fails.

    .venv/bin/python reports/datasets/summarise.py
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.data.card import describe_failures
from benchmark.data.collect import COLLECTION_ORDER
from benchmark.data.generated import name_revision
from benchmark.tasks import TASK_SETS, get_task

HERE = Path(__file__).resolve().parent


def _revision(card: dict) -> int:
    """The recipe revision that made a card's file."""
    return name_revision(card.get("path") or "")


def _cards() -> dict[str, list[tuple[str, dict]]]:
    """Each task's cards as (file stem, card), by revision; within one revision the plain
    `<Task>-generated` name was written first, so hashed names come after it."""
    cards: dict[str, list[tuple[str, dict]]] = {}
    for path in sorted(HERE.glob("*-generated*.json")):
        card = json.loads(path.read_text())
        cards.setdefault(card["task"], []).append((path.stem, card))
    for held in cards.values():
        held.sort(key=lambda item: (_revision(item[1]), item[0] != f"{item[1]['task']}-generated"))
    return cards


def _verdict(card: dict) -> str:
    if card["verdict"]["meaningful"]:
        return "yes"
    return "no: " + card["verdict"].get("reason", describe_failures(card))


def _short(card: dict) -> str:
    best = card["best_safe_return_normalised"]
    best = "n/a" if best is None else f"{best:.2f}"
    mark = "passes" if card["verdict"]["meaningful"] else "fails"
    return f"r{_revision(card)} {mark} ({card['fraction_safe']:.1%} safe, best safe {best})"


def _row(task: str, held: list[tuple[str, dict]]) -> str:
    if not held:
        return f"| {task} | not collected yet | | | | | |"
    stem, card = held[-1]
    meets = _verdict(card)
    wanted = get_task(task).collect.revision
    if _revision(card) != wanted:
        meets = f"revision {wanted} not collected yet; revision {_revision(card)}: {meets}"
    collection = card.get("collection", {})
    minutes = collection.get("wall_seconds", 0.0) / 60
    history = "; ".join(_short(c) for _, c in held[:-1]) or "-"
    return (
        f"| {task} | {meets} | {card['n_trajectories']} | {card['cost_limit']:g} | "
        f"{collection.get('steps', 0):,} PPO steps, {minutes:.0f} min | "
        f"[json]({stem}.json) · [png]({stem}.png) | {history} |"
    )


def two_job_hours(minutes: dict[str, float], order: tuple[str, ...], jobs: int = 2) -> float:
    """Wall hours of `collect_all --jobs 2`: each task, in `order`, starts on the first free
    job, taking the wall minutes its collection was measured to take (one core each)."""
    free = [0.0] * jobs
    for task in order:
        if task in minutes:
            slot = free.index(min(free))
            free[slot] += minutes[task]
    return max(free) / 60


def _totals(cards: dict[str, dict]) -> list[str]:
    minutes = {
        t: held[-1][1].get("collection", {}).get("wall_seconds", 0.0) / 60
        for t, held in cards.items()
    }
    missing = [t for t in TASK_SETS["table"] if t not in cards]
    scope = "all eleven" if not missing else f"the {len(cards)} collected ({len(missing)} to go)"
    return [
        "",
        f"`make data-all` for {scope}, from the measured wall times above (each on a machine "
        f"shared with other jobs): {sum(minutes.values()) / 60:.1f} h one after another; "
        f"{two_job_hours(minutes, COLLECTION_ORDER):.1f} h with its two jobs (the tasks in "
        "`COLLECTION_ORDER`, each starting on the first free core). Not one end-to-end run: "
        "the collections ran in several sessions, resumed from their checkpoints.",
    ]


def main() -> None:
    cards = _cards()
    lines = [
        "# Generated datasets: cards",
        "",
        "DSRL-format datasets the suite's collector made from the real simulators (PPO-Lagrangian",
        "with a falling cost limit, `make data-all`); **not DSRL's data**. Each card is the",
        "collector's own (`python -m benchmark data card` computes the same for any file);",
        "the criteria are those of [docs/datasets.md](../../docs/datasets.md). Written by",
        "`.venv/bin/python reports/datasets/summarise.py`.",
        "",
        "Each row is the newest card of the task's recipe; earlier revisions' cards stay here",
        "(records name their dataset's hash) and are summed up in the last column.",
        "",
        "| task | meets the criteria | trajectories | κ | collection (wall, shared) | card "
        "| earlier revisions |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(task, cards.get(task, [])) for task in TASK_SETS["table"]]
    lines += _totals(cards)
    (HERE / "README.md").write_text("\n".join(lines) + "\n")
    print(f"{len(cards)} card(s) -> {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
