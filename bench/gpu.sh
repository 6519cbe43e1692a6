#!/usr/bin/env bash
# The GPU benchmark in one command, for a machine with an NVIDIA GPU, JAX with CUDA and no
# TensorFlow (`make gpu-venv`): draws synthetic posts, builds them into LevelDB, then measures
# float32 against bfloat16 training (images/s, MFU) and the input pipeline alone, with threads and
# with 1 to 16 reader processes (bench/gpu.py).
# Its JSON goes to bench/measured/gpu-<date>-batch<size>.json, its summary to stderr.
#
#   bench/gpu.sh               # on the GPU machine: 4,096 posts, batches of 128 and 256
#   bench/gpu.sh --cpu-smoke   # anywhere: 48 posts, batch 8, a few steps, on the CPU via JAX
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv-gpu/bin/python ] && echo .venv-gpu/bin/python || echo python3 )}
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2
POSTS=4096 DRAWERS=8 BATCHES=(128 256) BENCH_ARGS=(--steps 40 --repeats 3 --readers 16)
if [[ "${1:-}" == "--cpu-smoke" ]]; then
    export JAX_PLATFORMS=cpu
    POSTS=48 DRAWERS=2 BATCHES=(8)
    BENCH_ARGS=(--steps 2 --repeats 1 --readers 2 --reader-processes 1 2 --matmul-size 512)
fi
WORK=${WORK:-$(mktemp -d /tmp/alt-i2v-gpu.XXXXXX)}
OUT=${OUT_DIR:-bench/measured}
"$PYTHON" -c 'import jax, keras, plyvel; print("backend", keras.backend.backend(), jax.devices())' >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >&2 || true

started=$(date +%s)
# Drawing is one process per call: split the posts over DRAWERS calls, each its own scene stream.
share=$(( POSTS / DRAWERS ))
for (( part = 0; part < DRAWERS; part++ )); do
    "$PYTHON" -m synthetic --out "$WORK/data/imgs" --count "$share" --seed "$part" \
        --start-id $(( part * share + 1 )) >&2 &
done
wait
"$PYTHON" alt_i2v.py --data-dir "$WORK/data" --maeshori --build --quiet >&2
echo "draw and --build of $POSTS posts: $(( $(date +%s) - started )) s" >&2

mkdir -p "$OUT"
stamp=$([[ "${1:-}" == "--cpu-smoke" ]] && echo cpu-smoke- )$(date -u +%Y%m%d-%H%M)
bench() {
    local result="$OUT/gpu-$stamp-batch$1.json"
    "$PYTHON" -m bench.gpu --data-dir "$WORK/data" --batch-size "$1" "${BENCH_ARGS[@]}" > "$result"
    echo "raw output: $result" >&2
}
bench "${BATCHES[0]}"
# --train's own epochs: when each step ends and each batch is read (bench/epoch_timeline.py).
"$PYTHON" -m bench.epoch_timeline --data-dir "$WORK/data" --batch-size "${BATCHES[0]}" \
    > "$OUT/gpu-$stamp-epoch-timeline.txt"
echo "raw output: $OUT/gpu-$stamp-epoch-timeline.txt" >&2
for batch in "${BATCHES[@]:1}"; do
    bench "$batch"
done
