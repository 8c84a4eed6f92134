# Both targets set themselves up: a virtual environment in .venv with qbench installed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.qbench-installed

.PHONY: run test lint clean

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the main job: qbench run on the embedded digits data set, offline
	$(VENV)/bin/qbench run

test: $(STAMP)  ## the test suite (lint first: it takes a second)
	$(VENV)/bin/ruff check qbench tests
	$(VENV)/bin/ruff format --check qbench tests
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check qbench tests
	$(VENV)/bin/ruff format --check qbench tests

clean:
	rm -rf $(VENV) runs build *.egg-info
