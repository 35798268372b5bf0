"""PGGAN training defaults shared by the New-run form and the library: one source for both.

The web process may not import app.ml (pyproject's import-linter contracts) and app.ml may not import
app.domain, so the values both read live here, in a module that imports nothing (no torch, nothing of
app). app.domain.run_kinds.TrainGanConfig and app.ml.gan (GanConfig, TrainConfig, the presets in
app/ml/gan/config.py) take their shared defaults from it.
"""

from __future__ import annotations

from typing import Literal

# "engine": Karras et al.'s choices where the authors' code is silent or differs in detail (fromRGB
# activation, minibatch-stddev groups of 4, Adam eps 1e-8, per-GPU batch, bf16 autocast on CUDA);
# "authors": the settings of Segal et al.'s training code (BradSegal/CXR_PGGAN). app/ml/gan/config.py
# lists every field a preset sets and every difference.
Preset = Literal["engine", "authors"]
PRESETS: tuple[Preset, ...] = ("engine", "authors")
DEFAULT_PRESET: Preset = "engine"

# Per-step decay of the EMA generator (the authors' ema_decay, Karras et al.'s G_smoothing).
EMA_DECAY = 0.999

# Per-GPU minibatch at 4, 8, ..., 1024 px in the authors' 4-GPU run (their configuration.py).
SEGAL_BATCH_SIZES: tuple[int, ...] = (16, 16, 16, 16, 16, 16, 14, 8, 3)

# GPUs of the authors' run: their configuration.py multiplies the per-GPU batches by ngpu = 4 and
# DataParallel splits each global batch of 64 (12 at 1024 px) over the 4 GPUs.
AUTHORS_GPUS = 4
