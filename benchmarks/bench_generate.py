"""PGGAN sampling speed (Karras et al. 2018; Segal et al. 2021's chest X-ray generator): images per second.

For each case (side, batch) and device, in the same run and on the same random weights laid out as
the authors' checkpoint (channel schedule 512, 512, 512, 512, 256, 128, 64, 32, 16 cut to the side):
  (a) the reference forward of tests/unit/segal_reference.py (functional torch on the raw state dict),
  (b) app.ml.gan's plain Generator, converted from that state dict by app.ml.gan.segal,
  (c) app.ml.gan.inference's fast path in fp32,
  (d) the fast path in bf16, where the device supports it,
with ratios against (a), the largest |difference| of (b) and (c) from (a), and the share of 8-bit
pixels of (d) within one grey level of (c). No network, no data, no database.

    .venv/bin/python benchmarks/bench_generate.py            # 256 px batch 1 and 8, 1024 px batch 1
    .venv/bin/python benchmarks/bench_generate.py --full     # adds 1024 px batch 8 (slow on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ml.gan.config import SEGAL_CHANNELS  # noqa: E402
from app.ml.gan.inference import bf16_native, bf16_supported, prepare_for_inference, quantize_uint8  # noqa: E402
from app.ml.gan.segal import convert_state_dict  # noqa: E402
from tests.unit.segal_reference import authors_state_dict, calibrate_output, reference_forward  # noqa: E402

Z_DIM = 512


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_rounds(
    fns: dict[str, Callable[[], object]], device: torch.device, rounds: int, reps: int
) -> dict[str, float]:
    """Median seconds per call of each function over `rounds` turns of (1 warm-up + `reps` timed calls).

    Within a turn a variant runs back to back, as a sampling loop would (its weights stay in cache);
    the turns rotate over the variants, so load from other processes falls on all of them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            _sync(device)
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def run_case(
    side: int, batch: int, device: torch.device, rounds: int, reps: int
) -> list[tuple[str, float, str]]:
    """(variant, seconds per batch, note) for the four variants at one side length and batch size."""
    n_blocks = side.bit_length() - 3
    sd = authors_state_dict(SEGAL_CHANNELS[: n_blocks + 1], z_dim=Z_DIM, seed=side)
    z = torch.randn(batch, Z_DIM, generator=torch.Generator().manual_seed(batch))
    calibrate_output(sd, z[:1])  # images span the authors' [0, 1] like a trained model's
    sd = {k: v.to(device) for k, v in sd.items()}
    z = z.to(device)
    gen, _ = convert_state_dict(sd)
    gen = gen.to(device)
    fast32 = prepare_for_inference(gen, "fp32")
    fns: dict[str, Callable[[], Tensor]] = {
        "(a) reference": lambda: reference_forward(sd, z),
        "(b) plain Generator": lambda: gen(z),
        "(c) fast fp32": lambda: fast32(z),
    }
    if bf16_supported(device):
        fast16 = prepare_for_inference(gen, "bf16")
        fns["(d) fast bf16"] = lambda: fast16(z)

    with torch.inference_mode():
        seconds = time_rounds(fns, device, rounds, reps)
        images = {name: fn() for name, fn in fns.items()}
    ref = images["(a) reference"]
    notes = {
        name: f"max abs diff from (a) {float((images[name] - ref).abs().max()):.1e}"
        for name in ("(b) plain Generator", "(c) fast fp32")
    }
    if "(d) fast bf16" in images:
        b16 = quantize_uint8(images["(d) fast bf16"], (0.0, 1.0)).int()
        b32 = quantize_uint8(images["(c) fast fp32"], (0.0, 1.0)).int()
        share = float(((b16 - b32).abs() <= 1).float().mean())
        clipped = float(((b32 == 0) | (b32 == 255)).float().mean())
        notes["(d) fast bf16"] = (
            f"8-bit within 1 level of (c): {100 * share:.2f} % (clipped {100 * clipped:.1f} %)"
        )
    return [(name, seconds[name], notes.get(name, "")) for name in fns]


def main() -> None:
    """Parse options, run every case, print a Markdown table to stdout."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also 1024 px at batch 8 (slow on CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="turns over the variants")
    parser.add_argument(
        "--reps", type=int, default=2, help="timed calls per variant per turn (median of all)"
    )
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")] if args.device in ("all", "cpu") else []
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    cases = [(256, 1), (256, 8), (1024, 1)] + ([(1024, 8)] if args.full else [])

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, ", end="")
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16 {bf16_native('cpu')}")
    # glibc's allocator settings change page-fault costs a lot at these tensor sizes (see GENERATE.md)
    print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}")
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"\n### {name}\n")
        print("| side | batch | variant | s / batch | images / s | vs (a) | check |")
        print("| ---: | ---: | --- | ---: | ---: | ---: | --- |")
        for side, batch in cases:
            rows = run_case(side, batch, device, args.rounds, args.reps)
            base = rows[0][1]
            for label, secs, note in rows:
                print(
                    f"| {side} | {batch} | {label} | {secs:.3f} | {batch / secs:.2f} | "
                    f"{base / secs:.2f}x | {note} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
