#!/usr/bin/env bash
# Reproduce the bundled demo generator model_store/phantom-pggan-64 (CPU: about 25 minutes on 2 cores).
# Uses the configured database (DATABASE_URL, or the embedded server under STORE_DIR) for the training set.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/phantom-pggan-64}

.venv/bin/cxrlab phantoms --n 2000 --size 64 --seed 100 --enriched --name demo-train-phantoms-64
.venv/bin/cxrlab gan train --images demo-train-phantoms-64 --out "$OUT" --resolution 64 --z-dim 128 \
  --channels 128,128,128,64,32 --kimg-fade 8 --kimg-stable 8 --kimg-final 24 --batch 16,16,16,16,16 \
  --seed 0 --ema 0.99 --kimg-grid 4 --kimg-checkpoint 4
echo "snapshot: $OUT/snapshot (copy it to model_store/phantom-pggan-64 with its manifest)"
