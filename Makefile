# loyalty-lab: `make run` builds the lab and writes a report; `make test` runs every check.
# Both set up .venv from scratch when needed (PyPI is the only network access required).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test setup install browser check-sync check-wheel nbtest pytest bench lab clean

# The environment: dependencies pinned by constraints.txt, and the project's Jupyter kernel.
$(VENV)/.ready: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name loyalty-lab --display-name "Python (loyalty-lab)" >/dev/null
	touch $@

setup: $(VENV)/.ready

# Install the package as a wheel would (not editable): tests and reports use exactly what users get.
install: setup
	$(BIN)/python -m pip install --quiet --no-deps --force-reinstall .

# The main job: warehouse from the sample data, then the HTML report under reports/.
run: install
	$(BIN)/loyalty-lab run

# The report test opens the HTML in headless Chromium, installed from Debian when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Every check, in order: notebooks clean and package in sync, notebook tests, pytest on the installed package,
# then the wheel installed as another team would (fresh venv, no constraints.txt) and run in a lab folder elsewhere.
test: setup browser
	tools/check_sync.sh
	$(MAKE) --no-print-directory install
	cd notebooks && ../$(BIN)/nbdev-test
	tools/run_pytest.sh
	PYTHON="$(PYTHON)" tools/check_wheel.sh

check-sync: setup
	tools/check_sync.sh

# Build the wheel, install it without constraints.txt into a fresh venv, `loyalty-lab init` + `run` outside the checkout.
check-wheel:
	PYTHON="$(PYTHON)" tools/check_wheel.sh

nbtest: install
	cd notebooks && ../$(BIN)/nbdev-test

pytest: install
	tools/run_pytest.sh

# Speed and memory figures (not part of `make test`): prints rows/s, seconds and ratios to a baseline.
bench: install
	$(BIN)/python tests/bench/bench_ingest.py
	$(BIN)/python tests/bench/bench_synth.py
	$(BIN)/python tests/bench/bench_merge.py
	$(BIN)/python tests/bench/bench_summary.py
	$(BIN)/python tests/bench/bench_clv.py
	$(BIN)/python tests/bench/bench_segments.py
	$(BIN)/python tests/bench/bench_report.py
	$(BIN)/python tests/bench/bench_rules.py
	$(BIN)/python tests/bench/bench_affinity.py
	$(BIN)/python tests/bench/bench_cli.py

# JupyterLab with the project's kernel.
lab: install
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(VENV) build *.egg-info
