"""Where ML work runs: the worker's GPU when it has one, else the CPU."""

from __future__ import annotations

import torch


def best_device() -> torch.device:
    """cuda when available (the first visible GPU: one job per GPU worker), else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
