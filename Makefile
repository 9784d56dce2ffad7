# Two entry points, as the README says: `make demo` and `make test`.
# Both create .venv with Python >= 3.12 and install the pinned dependencies; `make test` also
# installs chromium for the report's browser test (see `browser`).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
JOBS   ?= 2
DEMO_REPO ?= demo/repo

.PHONY: all venv browser demo test bench clean distclean

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

test: $(STAMP) browser
	$(PY) -m pytest -n $(JOBS) --durations=15 tests

# tests/test_evaluate.py opens the HTML report in headless Chromium and fails without one (CI must
# not pass with the page unchecked). So install Debian's chromium when it is missing and we may:
# as root or with password-less sudo; once there, this does nothing. RB_NO_BROWSER=1 skips both.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ "$$RB_NO_BROWSER" = 1 ] || [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "make: no $(CHROMIUM), and installing it needs root or sudo; the report's browser test" \
	    "will fail (RB_NO_BROWSER=1 skips it)." >&2; exit 0; fi; \
	echo "Installing Debian's chromium (apt-get) for the report's browser test"; \
	log=$$(mktemp); \
	if { $$sudo apt-get update -qq && \
	     $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	   } >"$$log" 2>&1 && [ -x "$(CHROMIUM)" ]; then rm -f "$$log"; \
	else tail -n 5 "$$log" >&2; echo "make: could not install chromium (log: $$log); the report's" \
	    "browser test will fail." >&2; fi

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO_REPO)

bench: $(STAMP)
	bash scripts/bench.sh

clean:
	rm -rf demo build *.egg-info .pytest_cache .hypothesis benchmarks/results

distclean: clean
	rm -rf $(VENV)
