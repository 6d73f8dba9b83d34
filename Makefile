# The README's commands. Both create .venv if it is missing and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP_TEST := $(VENV)/.stamp-test
STAMP_EXAMPLES := $(VENV)/.stamp-examples

.PHONY: test test-isa demo sd-demo lint typecheck bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP) install -q -e ".[test]"
	touch $@

$(STAMP_EXAMPLES): pyproject.toml | $(PY)
	$(PIP) install -q -e ".[examples]"
	touch $@

## make test: install jaxnn with the test extra, lint, type-check and run the whole suite
test: $(STAMP_TEST)
	$(PY) -m ruff check jaxnn tests examples benchmarks notebooks
	$(PY) -m pyright jaxnn
	$(PY) -m pytest -n 2 --dist loadgroup -q

## make test-isa: the suite again with torch's kernels and XLA's CPU code held to older instruction
## sets (torch: ATEN_CPU_CAPABILITY; XLA: --xla_cpu_max_isa), as on machines without AVX-512.
## `make test` itself runs the machine's best level (AVX-512 where the CPU has it).
## Levels are torch:XLA pairs. XLA held to SSE4_2 cannot compile float16 conversions (no F16C:
## "Failed to materialize symbols: wrapped_convert"), so AVX is the lowest level checked.
## jaxnn's own CPU kernels (jaxnn/_kernels) are compiled for the same level (JAXNN_KERNEL_FLAGS).
ISA_LEVELS ?= avx2:AVX2 default:AVX
test-isa: $(STAMP_TEST)
	@set -e; for level in $(ISA_LEVELS); do \
	  torch_isa=$${level%%:*}; xla_isa=$${level##*:}; \
	  case $$xla_isa in AVX2) cflags="-march=x86-64-v3";; AVX) cflags="-march=x86-64-v2 -mavx";; *) cflags="";; esac; \
	  echo "== torch ATEN_CPU_CAPABILITY=$$torch_isa, XLA --xla_cpu_max_isa=$$xla_isa, kernels $$cflags"; \
	  ATEN_CPU_CAPABILITY=$$torch_isa XLA_FLAGS="--xla_cpu_max_isa=$$xla_isa" JAXNN_KERNEL_FLAGS="$$cflags" \
	    $(PY) -m pytest -n 2 --dist loadgroup -q; \
	done

## make demo: train the digits example (prints the test accuracy, writes a PNG and a checkpoint)
demo: $(STAMP_EXAMPLES)
	$(PY) examples/train_digits.py --out out/digits

## make sd-demo: a tiny Stable Diffusion pipeline built offline, 25 DPM-Solver steps in diffusers and
## jaxnn from the same latents (prints the max image difference and the time per step, writes a PNG)
sd-demo: $(STAMP_EXAMPLES)
	$(PY) examples/sd_demo.py --out out/sd-demo

lint: $(STAMP_TEST)
	$(PY) -m ruff check jaxnn tests examples benchmarks notebooks

typecheck: $(STAMP_TEST)
	$(PY) -m pyright jaxnn

## make bench: every benchmark, side by side with torch and flax/optax
bench: $(STAMP_TEST)
	$(PY) -m benchmarks all

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
