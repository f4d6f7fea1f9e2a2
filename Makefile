# Two commands: `make lab` opens the course, `make test` runs every test. Both set up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings

# JupyterLab refuses to run as root unless told to; pass the flag only when it is needed.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# No display: print the URL instead of trying to open a browser.
BROWSER_FLAG := $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)

.PHONY: setup lab test exercises bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml config/lab-overrides.json
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	mkdir -p $(LAB_SETTINGS) && cp config/lab-overrides.json $(LAB_SETTINGS)/overrides.json
	touch $(STAMP)

# The printed URL opens the first lesson directly; Lab listens on localhost only.
lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb \
		$(ROOT_FLAG) $(BROWSER_FLAG)

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

exercises: setup
	$(PY) scripts/make_exercises.py

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
