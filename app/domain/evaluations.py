"""Evaluation results as CSV: an evaluation run's result as one row, with every number's n, resolution,
preprocessing and extractor (name, sha256, official or not), so rows from several runs stack."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from app.domain.errors import NotFound
from app.persistence.models import Run

COLUMNS = (
    "run_id",
    "real_set",
    "synthetic_set",
    "metric",
    "distance",
    "distance_matched",
    "baseline_real_vs_real",
    "ratio",
    "n_matched",
    "baseline_repeats",
    "fid_infinity",
    "kid_mean",
    "kid_std",
    "kid_subsets",
    "kid_subset_size",
    "precision",
    "recall",
    "f_score",
    "prc_k",
    "n_real",
    "n_synthetic",
    "resolution",
    "film_resolution_real",
    "film_resolution_synthetic",
    "preprocessing",
    "extractor",
    "extractor_sha256",
    "official_weights",
    "feature_dim",
    "fid_by_n",
)


def row(run_id: int, e: dict[str, Any]) -> dict[str, Any]:
    """The CSV row of one evaluation result (blank where a metric was not asked for)."""
    kid = e.get("kid") or {}
    pr = e.get("precision_recall") or {}
    films = e.get("film_resolution") or {}
    official = e.get("official_weights")
    return {
        "run_id": run_id,
        "real_set": e.get("real_set"),
        "synthetic_set": e.get("synthetic_set"),
        "metric": e.get("metric", "domain FD"),
        "distance": e.get("distance", e.get("domain_fd")),
        # The baseline and the distance beside it, both at n_matched images per side.
        "distance_matched": e.get("synthetic_vs_real_matched"),
        "baseline_real_vs_real": e.get("baseline"),
        "ratio": e.get("ratio"),
        "n_matched": e.get("n_matched"),
        "baseline_repeats": e.get("baseline_repeats"),
        "fid_infinity": e.get("fid_infinity"),
        "kid_mean": kid.get("mean"),
        "kid_std": kid.get("std"),
        "kid_subsets": kid.get("subsets"),
        "kid_subset_size": kid.get("subset_size"),
        "precision": pr.get("precision"),
        "recall": pr.get("recall"),
        "f_score": pr.get("f_score"),
        "prc_k": pr.get("k"),
        "n_real": e.get("n_real"),
        "n_synthetic": e.get("n_synthetic"),
        "resolution": e.get("resolution"),
        "film_resolution_real": films.get("real"),
        "film_resolution_synthetic": films.get("synthetic"),
        "preprocessing": e.get("preprocessing"),
        "extractor": e.get("extractor"),
        "extractor_sha256": e.get("extractor_sha256"),
        "official_weights": "" if official is None else ("yes" if official else "no"),
        "feature_dim": e.get("feature_dim"),
        # (n, FID_n) pairs FID∞ was fitted on, as JSON in one cell
        "fid_by_n": json.dumps((e.get("fid_by_n") or {}).get("points")) if e.get("fid_by_n") else "",
    }


def evaluation_csv(run: Run) -> str:
    """The run's evaluation as CSV text (a header and one row); NotFound when it has none."""
    e = (run.outputs or {}).get("evaluation")
    if run.kind != "evaluation" or not e:
        raise NotFound("This run has no evaluation.")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow({k: "" if v is None else v for k, v in row(run.id, e).items()})
    return out.getvalue()
