"""`lco`: a labelled archive. Latent class optimisation (Segal et al. 2021) finds, per target label
vector, a latent whose film the steering classifier labels so; the films become a synthetic image set whose
images carry the labels and full provenance (target, probabilities, success, steps, latent, seed,
generator and classifiers with their hashes).

LCO optimises against the classifier that steers it: an adversarial attack on that classifier, whose own
"yes" says little. So a judge, a second classifier trained on other patients, can decide success: on
each film as stored (rendered at the archive's resolution, decoded, fed to it at its input size), every
finding must be on the target's side of the judge's threshold by the margin. An image's labels are its
target on success, otherwise what the deciding classifier (the judge, or without one the steerer itself)
sees: the archive never claims a finding it does not see. Both classifiers' probabilities are stored.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from app.domain.importers import ImportSpec, SourceImage
from app.domain.rendering import render_array
from app.domain.run_kinds import LcoRunConfig
from app.jobs.tasks.generated import import_generated, named_model
from app.jobs.tasks.runner import RunContext, log
from app.persistence.patient_records import independence
from app.persistence.repositories import image_sets


def label_rows(session: Session, set_id: int, findings: list[str]) -> np.ndarray:
    """(N, F) 0/1 rows of a labelled set over `findings` (its joint label distribution)."""
    labels = image_sets.label_lists(session, set_id)
    return np.array([[f in (row or []) for f in findings] for row in labels], dtype=np.float32)


@dataclass(frozen=True)
class Verdict:
    """A classifier's reading of the archive's findings: which of its outputs and thresholds they are."""

    model: Any  # a frozen Classifier
    columns: np.ndarray  # (F,) the output of each archive finding
    thresholds: np.ndarray  # (F,) its thresholds for them

    @classmethod
    def of(cls, model: Any, manifest: dict[str, Any], findings: list[str]) -> Verdict:
        """The classifier of `manifest` reading `findings`; ValueError when it lacks any."""
        own = list(manifest["findings"])
        missing = [f for f in findings if f not in own]
        if missing:
            raise ValueError(f"classifier {manifest.get('name', '?')} does not read {', '.join(missing)}")
        thresholds = np.array([manifest["thresholds"][f] for f in findings], dtype=np.float64)
        return cls(model, np.array([own.index(f) for f in findings]), thresholds)

    def __call__(self, films: np.ndarray, goal: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """(B, F) probabilities and (B,) success for (B, s, s) uint8 films and (B, F) 0/1 targets."""
        import torch

        from app.ml.classifier.train import predict
        from app.ml.lco.optimise import reached, threshold_logits

        probs = predict(self.model, torch.from_numpy(films))[:, self.columns]  # (B, F)
        logits = torch.logit(torch.from_numpy(probs).float().clamp(1e-7, 1 - 1e-7))
        thr = threshold_logits(torch.as_tensor(self.thresholds, dtype=torch.float32))
        ok = reached(logits, torch.as_tensor(np.asarray(goal), dtype=torch.float32), thr, margin)
        return probs, ok.numpy()


def stored_film(film: np.ndarray, size: int) -> np.ndarray:
    """(h, w) uint8 -> (size, size) uint8 as the archive stores it: rendered by the one path, PNG decoded.

    Importing these pixels at `size` renders the same bytes again (rendering at its own size is exact).
    """
    with PILImage.open(io.BytesIO(render_array(film, size=size).png)) as im:
        return np.array(im.convert("L"))  # a writable copy (torch.from_numpy wants one)


def archive_items(
    G,
    C,
    found,
    targets,
    thresholds,
    findings,
    *,
    meta: dict[str, Any],
    batch: int,
    margin: float,
    resolution: int | None = None,
    judge: Verdict | None = None,
    tally: Counter[str] | None = None,
) -> Iterator[SourceImage]:
    """One import item per target: the stored film of its recorded latent, labelled, with provenance.

    The steerer C (and the judge, when given) reads each film as stored at `resolution` (None: G's), not
    G's float output that LCO saw; success and labels come from the judge, else from C. `tally` counts
    the successes of "steerer" and "judge".
    """
    import torch

    from app.ml.gan.sampling import to_uint8

    device = next(G.parameters()).device
    steerer = Verdict(C, np.arange(len(findings)), np.asarray(thresholds, dtype=np.float64))
    for start in range(0, len(targets), batch):
        with torch.no_grad():
            films = to_uint8(G(found.z[start : start + batch].to(device)), G.cfg.pixel_range)  # (B, H, W)
        if resolution is not None:
            films = np.stack([stored_film(f, resolution) for f in films])  # (B, size, size)
        goal = np.asarray(targets[start : start + batch])
        probs, s_ok = steerer(films, goal, margin)  # (B, F), (B,)
        j_probs, j_ok = judge(films, goal, margin) if judge is not None else (probs, s_ok)
        decider = judge or steerer
        if tally is not None:
            tally["steerer"] += int(s_ok.sum())
            tally["judge"] += int(j_ok.sum()) if judge is not None else 0
        for k, pixels in enumerate(films):
            i = start + k
            ok = bool(j_ok[k])
            wanted = [f for f, t in zip(findings, targets[i], strict=True) if t]
            seen = [f for f, p, thr in zip(findings, j_probs[k], decider.thresholds, strict=True) if p >= thr]
            provenance = {
                **meta,
                "index": i,
                "target": wanted,
                "achieved": {f: round(float(p), 4) for f, p in zip(findings, probs[k], strict=True)},
                "success": ok,  # the judge's verdict, or the steerer's own without a judge
                "steerer_success": bool(s_ok[k]),
                "optimiser_success": bool(found.success[i]),
                "steps": int(found.steps[i]),
                "attempts": int(found.attempts[i]),
                "latent": [round(float(v), 6) for v in found.z[i]],
            }
            if judge is not None:
                provenance["judged"] = {
                    f: round(float(p), 4) for f, p in zip(findings, j_probs[k], strict=True)
                }
                provenance["judge_success"] = ok
            yield SourceImage(
                name=f"lco-{meta['seed']}-{i:06d}",
                pixels=pixels,
                findings=tuple(wanted if ok else seen),
                provenance=provenance,
            )


@dataclass(frozen=True)
class _Models:
    """What an LCO run names, loaded: the generator G, the steerer C with its findings and thresholds, and
    the judge when there is one, with the manifests whose hashes the archive records."""

    G: Any
    g_manifest: dict[str, Any]
    g_resolution: int
    C: Any
    c_manifest: dict[str, Any]
    findings: list[str]
    thresholds: list[float]
    judge: Verdict | None
    j_manifest: dict[str, Any]
    independence_note: str  # how the judge's training data relates to C's ("" without a judge)


def _load_models(cfg: LcoRunConfig) -> _Models:
    """G, C and the judge on the best device; refuses a judge that shares patients with C."""
    from app.ml.classifier.checkpoints import load_classifier, thresholds_of
    from app.ml.devices import best_device
    from app.ml.gan.checkpoints import load_model

    g_snap, c_snap = named_model(cfg.model), named_model(cfg.classifier, kind="classifier")
    j_snap = named_model(cfg.judge, kind="classifier") if cfg.judge else None
    shared, independent = independence(c_snap, j_snap) if j_snap is not None else (None, "")
    if shared:  # checked when the run was made; the store may have changed since
        raise ValueError(f"the judge is not independent: {independent}")
    device = best_device()
    G, g_manifest = load_model(g_snap.folder, device=device)
    C, c_manifest = load_classifier(c_snap.folder, device=device)
    findings = list(c_manifest["findings"])
    judge, j_manifest = None, {}
    if j_snap is not None:
        J, j_manifest = load_classifier(j_snap.folder, device=device)
        judge = Verdict.of(J, j_manifest, findings)
    return _Models(
        G, g_manifest, g_snap.resolution, C, c_manifest, findings, thresholds_of(c_manifest), judge,
        j_manifest, independent,
    )  # fmt: skip


def _targets(session: Session, cfg: LcoRunConfig, findings: list[str]) -> np.ndarray:
    """(n, F) 0/1 finding combinations to reach: drawn from a labelled set, balanced, or as listed."""
    from app.ml.lco import targets as tg

    if cfg.target_mode == "empirical":
        return tg.empirical(label_rows(session, cfg.label_set_id, findings), cfg.n, seed=cfg.seed)
    if cfg.target_mode == "balanced":
        return tg.balanced(findings, cfg.n)
    return tg.explicit(cfg.combinations(), findings, cfg.n)


def _provenance(ctx: RunContext, cfg: LcoRunConfig, models: _Models, lco: Any) -> dict[str, Any]:
    """What every film of the archive records about how it was made."""
    meta = {
        "method": "lco",
        "model": cfg.model,
        "model_sha256": models.g_manifest.get("sha256", ""),
        "classifier": cfg.classifier,
        "classifier_sha256": models.c_manifest["sha256"],
        "seed": cfg.seed,
        "lco": lco.to_dict(),
        "target_mode": cfg.target_mode,
        "job": ctx.run_id,
        "judged_by": cfg.judge or f"{cfg.classifier} (self-judged)",
    }
    if models.judge is not None:
        meta |= {
            "judge": cfg.judge,
            "judge_sha256": models.j_manifest["sha256"],
            "independence": models.independence_note,
        }
    return meta


def _outputs(
    image_set: Any, found: Any, tally: Counter[str], n: int, models: _Models, judged_by: str
) -> dict[str, Any]:
    """The run's outputs: the set, and success rates on the stored films (and on G's float output)."""
    rates = {k: round(tally[k] / n, 4) for k in ("steerer", "judge")}
    outputs = {
        "image_set_id": image_set.id,
        "image_set": image_set.name,
        "images": image_set.image_count,
        # The share of stored films whose success decides their labels: the judge's, else self-judged.
        "success_rate": rates["judge"] if models.judge is not None else rates["steerer"],
        "judged_by": judged_by,
        "steerer_success_rate": rates["steerer"],
        "optimiser_success_rate": round(float(found.success.mean()), 4),  # on G's float output
    }
    if models.judge is not None:
        outputs |= {"judge_success_rate": rates["judge"], "independence": models.independence_note}
    return outputs


def lco_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Targets, optimisation, then the archive as one all-or-nothing import."""
    from app.ml.lco.optimise import LcoConfig, optimise

    cfg: LcoRunConfig = ctx.config  # type: ignore[assignment]
    models = _load_models(cfg)
    targets = _targets(session, cfg, models.findings)
    session.rollback()  # the label read is done; optimisation holds no transaction open
    lco = LcoConfig(
        steps=cfg.steps,
        lr=cfg.lr,
        margin=cfg.margin,
        restarts=cfg.restarts,
        batch=cfg.batch,
        screen=cfg.screen,
    )
    log.info("LCO: %d targets (%s) for %s with %s", cfg.n, cfg.target_mode, cfg.model, cfg.classifier)
    if models.judge is not None:
        log.info("judged by %s; independence %s", cfg.judge, models.independence_note)
    found = optimise(
        models.G,
        models.C,
        targets,
        models.thresholds,
        lco,
        seed=cfg.seed,
        abort_fn=ctx.should_abort,
        progress_fn=lambda p: ctx.report(p.within(0.0, 0.9)),  # the last tenth stores the films
    )
    ctx.check_abort()
    median_steps = int(np.median(found.steps))
    log.info("reached %d of %d targets; median steps %d", found.success.sum(), cfg.n, median_steps)
    meta = _provenance(ctx, cfg, models, lco)
    resolution = cfg.size or models.g_resolution
    spec = ImportSpec(
        name=cfg.set_name.strip() or f"{cfg.model} LCO archive (run {ctx.run_id})",
        kind="synthetic",
        label_schema=tuple(models.findings),
        resolution=resolution,
        source="lco",
        description=f"{cfg.n} LCO films of {cfg.model} steered by {cfg.classifier}, "
        f"judged by {meta['judged_by']} ({cfg.target_mode} targets), run {ctx.run_id}",
    )
    tally: Counter[str] = Counter()
    items = archive_items(
        models.G,
        models.C,
        found,
        targets,
        models.thresholds,
        models.findings,
        meta=meta,
        batch=cfg.batch,
        margin=cfg.margin,
        resolution=resolution,
        judge=models.judge,
        tally=tally,
    )
    image_set = import_generated(ctx, session, spec, items, cfg.n, span=(0.9, 1.0), verb="rendering")
    outputs = _outputs(image_set, found, tally, cfg.n, models, meta["judged_by"])
    log.info("success on the stored films: %s", {k: v for k, v in outputs.items() if "success" in k})
    return outputs
