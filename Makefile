# The README's commands. Both create .venv if it is missing and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP_TEST := $(VENV)/.stamp-test
STAMP_EXAMPLES := $(VENV)/.stamp-examples

.PHONY: test demo lint typecheck bench clean

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

## make demo: train the digits example (prints the test accuracy, writes a PNG and a checkpoint)
demo: $(STAMP_EXAMPLES)
	$(PY) examples/train_digits.py --out out/digits

lint: $(STAMP_TEST)
	$(PY) -m ruff check jaxnn tests examples benchmarks notebooks

typecheck: $(STAMP_TEST)
	$(PY) -m pyright jaxnn

## make bench: every benchmark, side by side with torch and flax/optax
bench: $(STAMP_TEST)
	$(PY) -m benchmarks all

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
