#!/usr/bin/env bash
# One prepared GPU check: the device-relevant tests and the benchmarks, in a few minutes.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# On a machine with a CUDA GPU and an image that has jax[cuda], flax, optax, chex, torch (CUDA),
# pytest, hypothesis, safetensors, diffusers, transformers: runs the functional/optimizer/module tests on the GPU (JAX on
# cuda, torch on CPU as the oracle; diffusers blocks and transformer layers included), then every benchmark with
# jaxnn on the GPU against torch's cuDNN/CUDA kernels, and writes OUT_DIR/BENCHMARKS-gpu.md and
# OUT_DIR/tests.log. Copy the tables into BENCHMARKS.md. With JAXNN_ALLOW_CPU=1 it also runs
# (as a smoke test) where there is no GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-out/gpu_check}}"
mkdir -p "$out"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

platform=$($PY -c "import jax; print(jax.devices()[0].platform)" 2>/dev/null || echo none)
echo "jax default platform: $platform"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
if [ "$platform" != "gpu" ] && [ "${JAXNN_ALLOW_CPU:-0}" != "1" ]; then
  echo "no GPU visible to JAX; set JAXNN_ALLOW_CPU=1 for a CPU smoke run" >&2
  exit 2
fi

status=0
# The device-relevant tests: every op, gradient, dtype, export and the train steps run on JAX's
# default device. Hypothesis example counts stay as in CI. (The multi-process test uses CPU gloo.)
timeout "${TEST_TIMEOUT:-300}" $PY -m pytest -q -x -p no:cacheprovider \
  tests/test_conv.py tests/test_norm.py tests/test_activation.py tests/test_optim.py \
  tests/test_modules.py tests/test_scaling.py tests/test_models_blocks.py tests/test_transformer.py -k "not two_processes" 2>&1 | tee "$out/tests.log" | tail -5
status=${PIPESTATUS[0]}

quick=""
[ "$platform" != "gpu" ] && quick="--quick"
printf '# Benchmarks on %s\n\n' "$platform" > "$out/BENCHMARKS-gpu.md"
timeout "${BENCH_TIMEOUT:-480}" $PY -m benchmarks all $quick --tag "$platform" --write "$out/BENCHMARKS-gpu.md" \
  > "$out/bench.log" 2>&1 || status=1
cat "$out/BENCHMARKS-gpu.md"
exit $status
