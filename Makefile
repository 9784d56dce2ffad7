# Two entry points, as the README says: `make demo` and `make test`.
# Both create .venv with Python >= 3.12 and install the pinned dependencies.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
JOBS   ?= 2
DEMO_REPO ?= demo/repo

.PHONY: all venv demo test bench clean distclean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/find_python.sh
	@set -e; \
	if ! { [ -x $(PY) ] && $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }; then \
	    py=$$(scripts/find_python.sh); \
	    echo "Creating $(VENV) with $$py"; \
	    rm -rf $(VENV); "$$py" -m venv $(VENV); \
	fi
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test]" --config-settings editable_mode=compat
	@touch $@

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --durations=15 tests

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO_REPO)

bench: $(STAMP)
	bash scripts/bench.sh

clean:
	rm -rf demo build *.egg-info .pytest_cache .hypothesis benchmarks/results

distclean: clean
	rm -rf $(VENV)
