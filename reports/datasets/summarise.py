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
from benchmark.tasks import TASK_SETS

HERE = Path(__file__).resolve().parent


def _cards() -> dict[str, dict]:
    cards = {}
    for path in sorted(HERE.glob("*-generated.json")):
        card = json.loads(path.read_text())
        cards[card["task"]] = card
    return cards


def _row(task: str, card: dict | None) -> str:
    if card is None:
        return f"| {task} | not collected yet | | | | |"
    meets = "yes" if card["verdict"]["meaningful"] else "no: " + describe_failures(card)
    collection = card.get("collection", {})
    minutes = collection.get("wall_seconds", 0.0) / 60
    name = f"{task}-generated"
    return (
        f"| {task} | {meets} | {card['n_trajectories']} | {card['cost_limit']:g} | "
        f"{collection.get('steps', 0):,} PPO steps, {minutes:.0f} min | "
        f"[json]({name}.json) · [png]({name}.png) |"
    )


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
        "| task | meets the criteria | trajectories | κ | collection (wall, shared) | card |",
        "|---|---|---|---|---|---|",
    ]
    lines += [_row(task, cards.get(task)) for task in TASK_SETS["table"]]
    (HERE / "README.md").write_text("\n".join(lines) + "\n")
    print(f"{len(cards)} card(s) -> {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
