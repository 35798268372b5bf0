"""KID (Bińkowski et al. 2018) and improved precision/recall (Kynkäänniemi et al. 2019) on (N, D) features,
through torch-fidelity's feature-to-metric functions with its defaults. FID itself is
app.ml.metrics.frechet.fid, exact also below 2048 images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import (
    KEY_METRIC_F_SCORE,
    KEY_METRIC_PRECISION,
    KEY_METRIC_RECALL,
    prc_features_to_metric,
)


@dataclass(frozen=True)
class Kid:
    """Kernel Inception distance: mean and std of the unbiased MMD² over random subsets."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def kid_subset_size(n: int, requested: int = 1000) -> int:
    """The subset size for n images on the smaller side: `requested`, at most half of n (at least 2)."""
    return max(2, min(requested, n // 2))


def kid(
    real: np.ndarray, synthetic: np.ndarray, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> Kid:
    """KID with torch-fidelity's kernel (x·y / D + 1)³ and unbiased MMD² on `subsets` pairs of subsets.

    The std across subsets is KID's only measure of spread, and it means something only when subsets
    differ: a subset as large as the set is the whole set every time (std 4e-16 at 1,000 images). So the
    subset size is at most half the smaller set (kid_subset_size), and the result records the size used.
    """
    size = kid_subset_size(min(len(real), len(synthetic)), subset_size)
    metric = kid_features_to_metric(
        torch.from_numpy(np.asarray(real, dtype=np.float64)),
        torch.from_numpy(np.asarray(synthetic, dtype=np.float64)),
        kid_subsets=subsets,
        kid_subset_size=size,
        rng_seed=seed,
        verbose=False,
    )
    return Kid(float(metric[KEY_METRIC_KID_MEAN]), float(metric[KEY_METRIC_KID_STD]), subsets, size)


@dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision and recall: the share of each set inside the other's k-NN manifold."""

    precision: float
    recall: float
    f_score: float
    k: int


def precision_recall(real: np.ndarray, synthetic: np.ndarray, *, k: int = 3) -> PrecisionRecall:
    """Precision: generates inside some real film's k-NN ball; recall: real films inside a generate's."""
    metric = prc_features_to_metric(
        torch.from_numpy(np.asarray(synthetic, dtype=np.float64)),  # torch-fidelity: input 1 is generated
        torch.from_numpy(np.asarray(real, dtype=np.float64)),
        prc_neighborhood=k,
        prc_batch_size=1_000,  # rows of distances at a time: 1,000 x N float64
        save_cpu_ram=True,  # in batches: a whole N x N distance matrix outgrows memory
        verbose=False,
    )
    return PrecisionRecall(
        float(metric[KEY_METRIC_PRECISION]),
        float(metric[KEY_METRIC_RECALL]),
        float(metric[KEY_METRIC_F_SCORE]),
        k,
    )
