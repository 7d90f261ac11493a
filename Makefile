# monoculture: the two set-up commands of the README.
#   make demo   create .venv, install, audit the bundled sample data, print where the report is
#   make test   create/update .venv, install with the test extras, run the tests
# Only the package registries are needed. torch is pinned to 2.13.0 before the extras because a bare
# torch requirement can pull a multi-GB CUDA build on these machines (a CPU wheel of 2.13.0 is on disk).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.monoculture-installed
REPORT ?= demo_report

.PHONY: demo test install browser test-all bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The last step compiles the audit's numba kernels (entropy cross-check, map) into numba's cache once, so that
# no audit compiles them (a first audit would otherwise start a process compiling them; issue #22).
$(STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install --upgrade pip setuptools wheel
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[models,dask,test,atompack]"
	$(PY) -m monoculture.audit.coverage.compiled >/dev/null || echo "make: numba warm-up failed; the first audit compiles its kernels"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/monoculture demo --out $(REPORT)

# Debian's chromium renders the report in the browser test; installed as root where missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "make: chromium could not be installed; the browser test will be skipped with its reason"

test: install browser
	$(VENV)/bin/pytest -q

test-all: install browser
	$(VENV)/bin/pytest -q -m "slow or not slow"

bench: install
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(REPORT) .$(REPORT)-data
