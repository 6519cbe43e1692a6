#!/usr/bin/env bash
# The GPU benchmark in one command, for a machine with an NVIDIA GPU, JAX with CUDA and no
# TensorFlow (`make gpu-venv`): draws synthetic posts, builds them into LevelDB, then measures
# float32 against bfloat16 training (images/s, MFU) and the input pipeline alone (bench/gpu.py).
# Its JSON goes to bench/measured/gpu-<date>.json, its summary to stderr.
#
#   bench/gpu.sh               # on the GPU machine: 2,048 posts, batch 128
#   bench/gpu.sh --cpu-smoke   # anywhere: 48 posts, batch 8, a few steps, on the CPU via JAX
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv-gpu/bin/python ] && echo .venv-gpu/bin/python || echo python3 )}
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2
POSTS=2048 BENCH_ARGS=(--batch-size 128 --steps 40 --repeats 3 --readers 16)
if [[ "${1:-}" == "--cpu-smoke" ]]; then
    export JAX_PLATFORMS=cpu
    POSTS=48 BENCH_ARGS=(--batch-size 8 --steps 2 --repeats 1 --readers 2 --matmul-size 512)
fi
WORK=${WORK:-$(mktemp -d /tmp/alt-i2v-gpu.XXXXXX)}
OUT=${OUT_DIR:-bench/measured}
"$PYTHON" -c 'import jax, keras, plyvel; print("backend", keras.backend.backend(), jax.devices())' >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >&2 || true

started=$(date +%s)
"$PYTHON" -m alti2v.synthetic --out "$WORK/data/imgs" --count "$POSTS" --seed 0 >&2
"$PYTHON" alt_i2v.py --data-dir "$WORK/data" --maeshori --build --quiet >&2
echo "draw and --build of $POSTS posts: $(( $(date +%s) - started )) s" >&2

mkdir -p "$OUT"
result="$OUT/gpu-$([[ "${1:-}" == "--cpu-smoke" ]] && echo cpu-smoke- )$(date -u +%Y%m%d-%H%M).json"
"$PYTHON" -m bench.gpu --data-dir "$WORK/data" "${BENCH_ARGS[@]}" > "$result"
echo "raw output: $result" >&2
