# Two entry points on a fresh machine:  `make demo`  and  `make test`.
# Both are idempotent: the venv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
EXTRAS ?= dev,ray
DEMO_CONFIG ?= configs/quickstart-prune.yaml

.PHONY: setup data demo test lint clean

setup: $(STAMP) data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch==2.13.0 is pinned in pyproject.toml: pip takes the local CPU build where one is on disk.
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Fashion-MNIST from Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist).
# Where apt is missing or not allowed, autostruct downloads the files itself on first use (when online).
data:
	@if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ( $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	    ( $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 ) ) \
	  || echo "note: could not apt-get install dataset-fashion-mnist; autostruct will try to download Fashion-MNIST"; \
	fi

demo: setup
	$(BIN)/autostruct info
	$(BIN)/autostruct prune $(DEMO_CONFIG) --resume

# One xdist worker per core (each test process runs one torch thread; tests/conftest.py runs a test marked
# cores(2) alone); a module's tests stay on one worker, so its run fixture is made once, and modules go out in
# the order tests/conftest.py sets (those with slow end-to-end runs first). docs/testing.md has the details.
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
