# The two commands: `make run` (execute every notebook, print a summary) and `make test`.
# Both create .venv and install the pinned dependencies the first time (or when they change).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2
# Notebooks to run or refresh; default: all of them.
NB     ?=

.PHONY: help setup run test test-unit test-notebooks refresh check-outputs lab assets clean
.PHONY: cpp

help:
	@echo "make run       execute every notebook headless (into outputs/executed/) and print a summary"
	@echo "make test      unit tests + pytest --nbval over every notebook"
	@echo "make refresh   re-execute notebooks in place to refresh their stored outputs (NB=path to pick one)"
	@echo "make lab       start JupyterLab on the notebooks"
	@echo "make assets    regenerate data/cat.jpg and data/imagenet_class_index.json"
	@echo "make cpp       configure and build the C++ programs of notebook 03 into cpp/build/ (incremental)"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m ptdeploy.notebooks run $(NB)

# Unit tests and notebooks in one pytest run, spread over $(JOBS) workers; loadscope keeps each
# notebook's cells together on one worker, in order.
test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope notebooks

refresh: $(STAMP)
	$(BIN)/python -m ptdeploy.notebooks refresh $(NB)
	$(BIN)/python -m ptdeploy.notebooks check $(NB)

check-outputs: $(STAMP)
	$(BIN)/python -m ptdeploy.notebooks check

lab: $(STAMP)
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks

assets: $(STAMP)
	$(BIN)/python -m ptdeploy.assets

# Notebook 03's C++ programs (cpp/), built with CMake against the venv's torch wheel.
cpp: $(STAMP)
	$(BIN)/python -m ptdeploy.cpp_build

clean:
	rm -rf outputs cpp/build .pytest_cache
