#!/usr/bin/env bash
# One prepared GPU check: the device-relevant tests and the benchmarks, within a time budget.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# On a machine with a CUDA GPU and an image that has jax[cuda], flax, optax, chex, torch (CUDA),
# pytest, hypothesis, safetensors, transformers (and diffusers, or its wheel in .whl/: see below): runs the
# functional/optimizer/module tests on the GPU (JAX on cuda, torch on CPU as the oracle; diffusers blocks,
# transformer layers, the schedulers, pipelines and fine-tuning step where their test files exist), then the
# benchmarks one by one, jaxnn on the GPU against torch's cuDNN/CUDA kernels, and writes
# OUT_DIR/BENCHMARKS-gpu.md (copy the tables into BENCHMARKS.md), OUT_DIR/tests.log, OUT_DIR/bench.log
# and OUT_DIR/timing.txt (seconds each stage took: size the next run from it).
#
# Time: the whole check stops within CHECK_BUDGET seconds (default 480): the tests get at most
# TEST_TIMEOUT (default 200; TEST_WORKERS=N runs N pytest-xdist workers on the one GPU), the
# benchmarks what is left, run in the order of BENCHES (default: the
# Stable Diffusion ones first; e.g. BENCHES="pipeline models"); one that would start with under 30 s
# left is listed as skipped in BENCHMARKS-gpu.md. Measured on one H200 (session 6): all benchmarks
# 492 s (models 184 s, pipeline 118 s, rnn 46 s, checkpoint 33 s, the others 1-26 s; mostly XLA
# compiles), the machine's start ~30 s; the test stage has not yet run on the GPU itself (expect
# 2-3 min with TEST_WORKERS=8; on that machine's CPU 669 tests took 83 s).
#
# diffusers is not in every CUDA image and such machines may have no package index: download its
# wheel here first (`python -m pip download --no-deps diffusers==0.42.1 -d .whl`; pure Python, 6 MB;
# .whl/ is git-ignored, so carry it) and the check installs it from there when `import diffusers` fails.
# With JAXNN_ALLOW_CPU=1 it also runs (as a smoke test, benchmarks --quick) where there is no GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-out/gpu_check}}"
mkdir -p "$out"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
budget="${CHECK_BUDGET:-480}"
begin=$SECONDS
left() { echo $((budget - (SECONDS - begin))); }
: > "$out/timing.txt"

if ! $PY -c "import diffusers" 2>/dev/null; then
  if ls .whl/diffusers-*.whl > /dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps .whl/diffusers-*.whl || echo "installing .whl/diffusers failed" >&2
  else
    echo "diffusers is not installed and no .whl/diffusers-*.whl is here: its tests and benchmarks will fail" >&2
  fi
fi

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
tests=(tests/test_attention_chunked.py tests/test_attention.py tests/test_conv.py tests/test_norm.py
       tests/test_activation.py tests/test_optim.py tests/test_modules.py tests/test_scaling.py
       tests/test_models_blocks.py tests/test_transformer.py)
for f in tests/test_schedulers_*.py tests/test_pipelines.py tests/test_finetune.py; do
  [ -e "$f" ] && tests+=("$f")
done
t0=$SECONDS
test_s="${TEST_TIMEOUT:-200}"
[ "$test_s" -gt "$(left)" ] && test_s=$(left)
# torch is the oracle on the CPU in full float32; JAX's float32 matmuls and convolutions are held to
# full precision too (JAX_DEFAULT_MATMUL_PRECISION=highest; XLA's GPU default is TF32, see the README).
# TEST_WORKERS > 0 runs pytest-xdist workers sharing the GPU (no preallocation); each test's result
# line is logged as it ends (-v), so a run stopped at TEST_TIMEOUT still says what passed. The GPU
# image's jax/torch versions are not the pinned ones: their deprecation warnings are not errors
# here, and pytest-benchmark (in that image) is disabled since it refuses to run beside xdist.
workers="${TEST_WORKERS:-0}"
xdist=()
if [ "$workers" -gt 0 ]; then
  xdist=(-n "$workers")
  export XLA_PYTHON_CLIENT_PREALLOCATE=false OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
fi
# tests/conftest.py holds JAX to the CPU unless JAX_PLATFORMS is set: here the GPU comes first.
jax_platforms=cpu
[ "$platform" = "gpu" ] && jax_platforms=cuda,cpu
JAX_PLATFORMS="${JAX_PLATFORMS:-$jax_platforms}" \
JAX_DEFAULT_MATMUL_PRECISION="${JAX_DEFAULT_MATMUL_PRECISION:-highest}" timeout "$test_s" \
  $PY -m pytest -v -p no:cacheprovider -p no:benchmark --maxfail="${TEST_MAXFAIL:-50}" --dist loadgroup \
  -W ignore::DeprecationWarning -W ignore::FutureWarning "${xdist[@]}" "${tests[@]}" \
  -k "not two_processes" > "$out/tests.log" 2>&1
status=$?
tail -5 "$out/tests.log"; echo
for word in PASSED FAILED ERROR SKIPPED; do
  printf '%s %s\n' "$word" "$(grep -c " $word" "$out/tests.log")"
done | tee -a "$out/timing.txt"
echo "tests (${#tests[@]} files): $((SECONDS - t0)) s, exit $status" | tee -a "$out/timing.txt"

quick=""
[ "$platform" != "gpu" ] && quick="--quick"
md="$out/BENCHMARKS-gpu.md"
printf '# Benchmarks on %s\n\n' "$platform" > "$md"
# The benchmarks in one process (importing jax, torch and diffusers and starting CUDA once), each
# section written as soon as it is measured; one that would start with under 30 s left is listed as
# skipped, one that fails is recorded and the next runs; the whole stops at the budget.
t0=$SECONDS
remaining=$(left)
[ "$remaining" -lt 31 ] && remaining=31  # timeout 0 would mean none; every benchmark is skipped then
timeout "$remaining" $PY - "$md" "$platform" "$(($(date +%s) + remaining))" "$quick" \
  ${BENCHES:-pipeline models attention transformer conv norm act optim layers checkpoint rnn} \
  > "$out/bench.log" 2>&1 <<'PYEOF'
import sys, time, traceback
from benchmarks.__main__ import BENCHES, _env, write_section

md, tag, deadline, quick, names = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "--quick", sys.argv[5:]
env, failed = _env(), False
for name in names:
    if deadline - time.time() < 30:  # the deadline is the shell's: imports and earlier benchmarks count
        write_section(md, f"{name}-{tag}", f"_{name}: skipped, the check ran out of time_\n")
        print(f"{name}: skipped (time)", file=sys.stderr)
        continue
    start = time.monotonic()
    try:
        text = BENCHES[name](quick) + f"\n_{env}_\n"
    except Exception:
        failed, text = True, f"_{name}: failed, see bench.log_\n"
        traceback.print_exc()
    print(text, flush=True)
    write_section(md, f"{name}-{tag}", text)
    print(f"{name}: {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
sys.exit(1 if failed else 0)
PYEOF
rc=$?
[ $rc -ne 0 ] && status=1
grep -E '^[a-z]+: ([0-9]+ s|skipped)' "$out/bench.log" >> "$out/timing.txt"
echo "benchmarks: $((SECONDS - t0)) s, exit $rc" | tee -a "$out/timing.txt"
[ $rc -eq 124 ] && printf '_the benchmarks were stopped at the time budget (CHECK_BUDGET=%s s)_\n' "$budget" >> "$md"
cat "$md"
exit $status
