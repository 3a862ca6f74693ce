#!/usr/bin/env bash
# The GPU check of issue 13, for a CUDA machine with no network: runs in under 8 minutes.
#
#   benchmarks/gpu_check.sh [OUT.json]        (default: benchmarks/results/gpu_check.json)
#
# 1. the tests marked `gpu` (every computation on CUDA against the CPU, stated tolerances);
# 2. training speed: ResNet-20 on synthetic data in CIFAR-10's exact format, prunescope's
#    loop against a bare PyTorch loop with the same settings (bf16, channels_last,
#    augmentation on the device), images/s, at batch 512 and at the study's batch of 128;
# 3. the landscape engine on the demo MLP grid: CPU, device point by point, device batched;
# 4. the cifar10-resnet20 study's time on one GPU, estimated from 2 and 3 and the study's
#    own epochs (benchmarks/study_estimate.py).
# Then one JSON file with every figure and whether each target is met.
#
# Python: the uv environment when uv and the lock are usable, else this machine's own
# `python3` with its CUDA build of torch (the project is imported from this checkout;
# nothing is downloaded). Set PYTHON to choose one.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results/gpu_check.json}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PRUNESCOPE_DEVICE="${PRUNESCOPE_DEVICE:-cuda}"
SMOKE="${GPU_CHECK_SMOKE:-0}"  # 1: a seconds-long run on any device (the CPU test of this script)

if [ -n "${PYTHON:-}" ]; then
  PY=("$PYTHON")
elif command -v uv >/dev/null 2>&1 && uv run --frozen --offline python -c "import torch" 2>/dev/null; then
  PY=(uv run --frozen --offline python)
else
  PY=(python3)
fi
echo "gpu_check: python: ${PY[*]}; device: $PRUNESCOPE_DEVICE" >&2
"${PY[@]}" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" >&2

# 1. tests marked gpu (skipped, not failed, where pytest or a test's library is missing)
if [ "$SMOKE" = 1 ]; then
  echo '{"skipped": "smoke run"}' > "$TMP/tests.json"
else
  timeout 300 "${PY[@]}" -m pytest -m gpu -q -p no:cacheprovider --timeout=240 \
    --junitxml="$TMP/tests.xml" >"$TMP/tests.log" 2>&1
  echo "gpu tests exit status $?" >&2
  tail -5 "$TMP/tests.log" >&2
  "${PY[@]}" benchmarks/study_estimate.py --junit "$TMP/tests.xml" --log "$TMP/tests.log" \
    --json "$TMP/tests.json"
fi

# 2. training speed, 3. landscape engine
# at batch 512 (the throughput target) and at the study's own batch of 128 (its estimate)
if [ "$SMOKE" = 1 ]; then
  SIZE=(--sizes 1024 128 128 --steps 4 --rounds 1 --max-seconds 30 --precision fp32)
else
  SIZE=(--max-seconds 50)
fi
for BATCH in 512 128; do
  timeout 150 "${PY[@]}" benchmarks/train_speed.py --device "$PRUNESCOPE_DEVICE" --arch resnet20 \
    --data cifar10-shape --batch "$BATCH" "${SIZE[@]}" --json "$TMP/train$BATCH.json" >&2 \
    || echo '{"error": "train_speed.py failed; see its output above"}' > "$TMP/train$BATCH.json"
done
if [ "$SMOKE" = 1 ]; then LSIZE=(--repeats 1 --seconds 0.3); else LSIZE=(); fi
timeout 150 "${PY[@]}" benchmarks/landscape_gpu.py --device "$PRUNESCOPE_DEVICE" "${LSIZE[@]}" \
  --json "$TMP/landscape.json" >&2 \
  || echo '{"error": "landscape_gpu.py failed; see its output above"}' > "$TMP/landscape.json"

# 4. the study's estimate, and the one JSON file with the targets
"${PY[@]}" benchmarks/study_estimate.py --study assets/studies/cifar10-resnet20.toml \
  --tests "$TMP/tests.json" --train "$TMP/train512.json" --study-train "$TMP/train128.json" \
  --landscape "$TMP/landscape.json" \
  --out "$OUT"
echo "gpu_check: wrote $OUT" >&2
