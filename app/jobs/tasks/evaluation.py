"""`evaluation`: how far a synthetic set lies from a real set in the features of a chosen extractor: the
project's classifier (domain Fréchet distance, no outside weights) or the registered Inception-v3 (FID).
Beside the distance: a real-versus-real baseline at the same n (n generates against real half A, real
half B against A) and their ratio; optionally FID∞, KID and precision/recall. Every result records n,
resolution, preprocessing and the extractor with its sha256. Features are cached per (set, images,
resolution, preprocessing, extractor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import EvaluationConfig
from app.jobs.tasks.features import domain_extractor, features_of, film_set, inception_extractor
from app.jobs.tasks.runner import RunContext, log
from app.ml.metrics.frechet import Matched, fid, matched_baseline
from app.persistence.feature_cache import FeatureCache


def _extras(cfg: EvaluationConfig, real_f: np.ndarray, syn_f: np.ndarray) -> dict[str, Any]:
    """FID∞ (with its points and fit, or why it was refused), KID and precision/recall, as asked."""
    from app.ml.metrics.fidelity import kid, precision_recall
    from app.ml.metrics.frechet import fid_infinity

    out: dict[str, Any] = {}
    if cfg.extrapolate:
        try:
            fit = fid_infinity(real_f, syn_f, seed=cfg.seed)
        except ValueError as exc:  # too few images for the feature dimension: say so, keep the rest
            out["fid_infinity_refused"] = str(exc)
        else:
            out["fid_infinity"] = round(fit.value, 6)
            points = [[n, round(v, 6)] for n, v in fit.points]
            out["fid_by_n"] = {"points": points, "slope": round(fit.slope, 6)}
    if cfg.kid:
        k = kid(real_f, syn_f, subsets=cfg.kid_subsets, subset_size=cfg.kid_subset_size, seed=cfg.seed)
        out["kid"] = {"mean": k.mean, "std": k.std, "subsets": k.subsets, "subset_size": k.subset_size}
    if cfg.precision_recall:
        pr = precision_recall(real_f, syn_f, k=3)
        out["precision_recall"] = {
            "precision": pr.precision,
            "recall": pr.recall,
            "f_score": pr.f_score,
            "k": pr.k,
        }
    return out


def baseline_result(matched: Matched) -> dict[str, Any]:
    """The matched-n comparison as the result stores it, with a note when real films were too few."""
    out: dict[str, Any] = {
        "baseline": round(matched.real_vs_real, 6),
        "synthetic_vs_real_matched": round(matched.synthetic_vs_real, 6),
        "ratio": round(matched.ratio, 4) if matched.ratio is not None else None,
        "n_matched": matched.n,
        "baseline_repeats": matched.repeats,
    }
    if matched.limited:
        out["baseline_note"] = (
            f"The real set has too few films for a baseline at all {matched.synthetic_available} generates "
            f"(it needs twice as many): every distance in the comparison uses {matched.n} per side."
        )
    return out


def evaluation_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Features of both sets (cached), distance, baseline at matched n, ratio, and the optional extras."""
    cfg: EvaluationConfig = ctx.config  # type: ignore[assignment]
    # Real films up to twice the synthetic limit: the baseline's two real halves each match the generates.
    real = film_set(session, cfg.real_set_id, limit=2 * cfg.max_images, seed=cfg.seed)
    synthetic = film_set(session, cfg.synthetic_set_id, limit=cfg.max_images, seed=cfg.seed)
    session.rollback()  # nothing to write: do not hold a transaction open through the features
    ctx.progress(0.02, "loading the feature extractor")
    extractor = inception_extractor() if cfg.extractor == "inception" else domain_extractor(cfg.classifier)
    cache = FeatureCache(get_settings().store_dir)
    real_f, real_hit = features_of(ctx, cache, extractor, real, (0.05, 0.45))
    syn_f, syn_hit = features_of(ctx, cache, extractor, synthetic, (0.45, 0.85))
    ctx.progress(0.85, "Fréchet distance and the baseline at matched n")
    distance = fid(real_f, syn_f)  # exact also with fewer films than feature dimensions
    matched = matched_baseline(real_f, syn_f, seed=cfg.seed)
    ctx.check_abort()
    ctx.progress(0.9, "further metrics")
    metric = "FID" if extractor.kind == "inception" else "domain FD"
    result: dict[str, Any] = {
        "extractor_kind": extractor.kind,
        "metric": metric,
        "distance": round(distance, 6),
        ("fid" if extractor.kind == "inception" else "domain_fd"): round(distance, 6),
        **baseline_result(matched),
        "n_real": len(real.hashes),
        "n_synthetic": len(synthetic.hashes),
        "resolution": extractor.resolution,
        "film_resolution": {"real": real.resolution, "synthetic": synthetic.resolution},
        "preprocessing": extractor.preprocessing,
        "extractor": extractor.name,
        "extractor_sha256": extractor.sha256,
        "official_weights": extractor.official,
        "feature_dim": int(real_f.shape[1]),
        "real_set": real.name,
        "synthetic_set": synthetic.name,
        "real_set_id": real.id,
        "synthetic_set_id": synthetic.id,
        "cache": {"real": "hit" if real_hit else "computed", "synthetic": "hit" if syn_hit else "computed"},
        **_extras(cfg, real_f, syn_f),
    }
    log.info(
        "%s %.4g; at n=%d %.4g against real-vs-real %.4g (%s)",
        metric,
        distance,
        matched.n,
        matched.synthetic_vs_real,
        matched.real_vs_real,
        extractor.name,
    )
    return {"evaluation": result}
