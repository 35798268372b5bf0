"""Is a file response faster than sending the image's bytes? One stored-size PNG, both ways, one run.

Issue 14 asked to serve case images "without copying them through Python where the server allows". Under
uvicorn the answer is measured here: uvicorn offers no zero-copy send, so Starlette's FileResponse reads the
file in chunks through worker threads and watches for disconnects, which costs more than reading ~64 KB and
sending it in one body. The product keeps the bytes path; rerun this after changing the server.

    .venv/bin/python benchmarks/bench_image_response.py [--size 256] [--requests 400]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _serve import free_port
from PIL import Image
from tqdm import tqdm

HERE = Path(__file__).resolve().parent


def timings(client: httpx.Client, path: str, n: int) -> list[float]:
    """Milliseconds per GET, after a warm-up."""
    for _ in range(50):
        client.get(path).raise_for_status()
    out = []
    for _ in tqdm(range(n), desc=path, unit="GET", leave=False):
        t0 = time.perf_counter()
        client.get(path).raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    """Serve, measure both ways in alternating rounds, print percentiles and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=256, help="Image side (px), stored uncompressed as cases are."
    )
    parser.add_argument("--requests", type=int, default=400, help="Timed GETs per way and round.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "case.png"
        grey = np.random.default_rng(0).integers(0, 256, (args.size, args.size), dtype=np.uint8)
        Image.fromarray(grey).save(image, compress_level=0)
        n_bytes = image.stat().st_size
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "_image_app:app", "--app-dir", str(HERE), "--port", str(port)]
        server = subprocess.Popen(
            [*cmd, "--log-level", "warning", "--no-access-log"], env={**os.environ, "BENCH_IMAGE": str(image)}
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(base + "/bytes")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            results: dict[str, list[float]] = {"/bytes": [], "/file": []}
            with httpx.Client(base_url=base) as client:
                for _ in range(args.rounds):
                    for path in results:
                        results[path] += timings(client, path, args.requests)
        finally:
            server.terminate()
            server.wait(10)
    print(f"\nbench_image_response: a {args.size} px PNG of {n_bytes:,} bytes, uvicorn, loopback")
    p50 = {}
    for path, xs in results.items():
        q = np.percentile(xs, [50, 95, 99])
        p50[path] = q[0]
        print(f"  {path:<8} {len(xs):>6} GETs   p50 {q[0]:6.2f} ms   p95 {q[1]:6.2f} ms   p99 {q[2]:6.2f} ms")
    print(f"  ratio p50 file / bytes: {p50['/file'] / p50['/bytes']:.2f}")


if __name__ == "__main__":
    main()
