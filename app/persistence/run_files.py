"""A run's folder under STORE_DIR/runs/<id>: the log, metrics.jsonl and sample grids its worker wrote."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

LOG_FILE = "log.txt"
METRICS_FILE = "metrics.jsonl"
LATEST_GRID = "grid-latest.png"
MAX_METRICS_LINES = 5000


def run_dir(runs_dir: Path, run_id: int) -> Path:
    """The folder of one run (it may not exist yet)."""
    return runs_dir / str(int(run_id))


def artefacts_dir(folder: Path, attempt: int) -> Path:
    """Where the current attempt's metrics and grids are: attempt-<n>/ for training, else the run's folder."""
    for k in range(attempt, 0, -1):
        candidate = folder / f"attempt-{k}"
        if candidate.is_dir():
            return candidate
    return folder


def log_tail(folder: Path, lines: int = 40) -> list[str]:
    """The last `lines` lines of the run's log."""
    path = folder / LOG_FILE
    if not path.exists():
        return []
    with path.open(errors="replace") as f:
        return [line.rstrip("\n") for line in deque(f, maxlen=lines)]


def metrics(folder: Path) -> list[dict[str, Any]]:
    """The metrics lines (one JSON object each), the last MAX_METRICS_LINES of them."""
    path = folder / METRICS_FILE
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    with path.open() as f:
        for line in deque(f, maxlen=MAX_METRICS_LINES):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written right now
                continue
    return out


def latest_grid(folder: Path) -> Path | None:
    """The newest sample grid, if the run writes them."""
    path = folder / LATEST_GRID
    return path if path.exists() else None


def table_csv(folder: Path) -> Path | None:
    """The synthetic-versus-real table a run saved, if any."""
    path = folder / "synth_vs_real.csv"
    return path if path.exists() else None
