# The two commands: `make run` (execute every notebook, print a summary) and `make test`.
# Both create .venv and install the pinned dependencies the first time (or when they change).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2
# pytest --nbval over the notebooks. conftest.py adds what plain `pytest --nbval` needs: the sanitizers in
# notebooks/sanitize.cfg and a kernel in this venv. -rs lists what was skipped, and why.
NBVAL  := --nbval -rs
# Another machine's profile, for make test-portable: one core, and instruction sets capped below this
# CPU's (ATen's vector kernels off, oneDNN and MKL at AVX, OpenBLAS at Sandy Bridge). Checked outputs
# must not change.
PORTABLE := taskset -c 0 env ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX \
	MKL_ENABLE_INSTRUCTIONS=AVX OPENBLAS_CORETYPE=SandyBridge
# Notebooks to run or refresh; default: all of them.
NB     ?=
# System programs (nginx, cmake, Chromium, wrk): one list, system-packages.txt, also Binder's apt.txt.
# Standard library only, so it runs with the system Python before the venv exists.
SYSTEM   := PYTHONPATH=src $(PYTHON) -m ptdeploy.system_packages

.PHONY: help setup run test test-fast test-notebooks test-portable refresh check-outputs lab assets i18n zh
.PHONY: clean lint format
.PHONY: serve serve-direct serve-ray bench-serve system-packages system-packages-tests
.PHONY: cpp gpu-record drift errata

help:
	@echo "make run       execute every chapter and deep dive headless (into outputs/executed/), print a summary"
	@echo "make test      lint, then every test: unit, integration, slow (pytest --nbval over every notebook)"
	@echo "make errata    ERRATA.md from the notebooks (where the tutorials no longer work as written)"
	@echo "make drift     the notebooks on the newest releases (.venv-drift; downloads GBs): data/drift/DATE.md"
	@echo "make test-fast the unit tests only (pytest -m unit; no server, C++ build, browser or notebook)"
	@echo "make test-portable  pytest --nbval over the notebooks on one core with capped instruction sets"
	@echo "make lint      ruff: lint and format check (code, tests, scripts, notebooks)"
	@echo "make format    ruff: format and apply safe fixes"
	@echo "make refresh   re-execute notebooks in place to refresh their stored outputs (NB=path to pick one)"
	@echo "make lab       JupyterLab on the notebooks at http://127.0.0.1:8888 (LAB_HOST, LAB_PORT, LAB_TOKEN)"
	@echo "               LAB_LANG=zh_CN: in Chinese, on the Chinese edition (notebooks/zh/)"
	@echo "make i18n      update the Chinese catalogs (notebooks/zh/po/) from the English notebooks"
	@echo "make zh        build the Chinese notebooks (notebooks/zh/) from the English ones and the catalogs"
	@echo "make assets    regenerate data/cat.jpg and data/imagenet_class_index.json"
	@echo "make cpp       configure and build the C++ programs of notebook 03 into cpp/build/ (incremental)"
	@echo "make gpu-record  on a CUDA machine: record what notebooks 03, 06, 07 show from a GPU into data/gpu/"
	@echo "make serve     the classifier service (notebook 01): nginx on 127.0.0.1:5000 in front of gunicorn (SERVE_HOST/PORT/WORKERS/THREADS)"
	@echo "make serve-direct  gunicorn alone on SERVE_HOST:SERVE_PORT, no proxy (debugging, benchmarks of the app alone)"
	@echo "make serve-ray  the same service on Ray Serve: a local Ray instance, SERVE_REPLICAS replicas, on SERVE_HOST:SERVE_PORT"
	@echo "make bench-serve  the serving benchmark of notebook 01 (several minutes; not part of make test)"

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP)

run: $(STAMP) system-packages
	$(BIN)/python -m ptdeploy.tools.notebooks run $(NB)

# Unit tests and notebooks in one pytest run, spread over $(JOBS) workers; loadscope keeps each
# notebook's cells together on one worker, in order.
test: lint system-packages-tests
	$(BIN)/python -m pytest $(NBVAL) -n $(JOBS) --dist loadscope

# ruff reads pyproject.toml ([tool.ruff]); notebooks are linted and formatted too.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Test kinds come from the folders (tests/unit, tests/integration, tests/slow); see pyproject.toml's
# markers. The nbval and Hypothesis plugins are left out: no unit test needs them, and they cost seconds
# of imports.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -p no:nbval -p no:hypothesispytest -m unit tests/unit

test-notebooks: $(STAMP) system-packages
	$(BIN)/python -m pytest $(NBVAL) -n $(JOBS) --dist loadscope notebooks

# The notebooks' checked outputs must hold on other machines too: one core, older instruction sets.
test-portable: $(STAMP) system-packages
	$(PORTABLE) $(BIN)/python -m pytest $(NBVAL) notebooks

refresh: $(STAMP) system-packages
	$(BIN)/python -m ptdeploy.tools.notebooks refresh $(NB)
	$(BIN)/python -m ptdeploy.tools.notebooks check $(NB)
	$(BIN)/python -m ptdeploy.tools.translations build $(NB)
	$(BIN)/python -m ptdeploy.tools.errata

# The Chinese edition (notebooks/zh/, src/ptdeploy/tools/translations.py). i18n: the catalogs
# (notebooks/zh/po/*.po, one entry per markdown cell) follow the English notebooks; a changed cell keeps
# its translation, marked fuzzy. zh: the Chinese notebooks, from the English ones and the catalogs.
# i18n-check: what is untranslated, fuzzy, or changes a code span, link, number or glossary term.
i18n: $(STAMP)
	$(BIN)/python -m ptdeploy.tools.translations update $(NB)
	$(BIN)/python -m ptdeploy.tools.translations check $(NB) || true

# ERRATA.md: where the tutorials no longer work as written, from the cells' "erratum" metadata and outputs
# (src/ptdeploy/tools/errata.py); make refresh rebuilds it too.
errata: $(STAMP)
	$(BIN)/python -m ptdeploy.tools.errata

zh: $(STAMP)
	$(BIN)/python -m ptdeploy.tools.translations build $(NB)
	$(BIN)/python -m ptdeploy.tools.translations check $(NB)

check-outputs: $(STAMP)
	$(BIN)/python -m ptdeploy.tools.notebooks check

# JupyterLab on notebooks/ (src/ptdeploy/tools/lab.py): --allow-root only when run as root, the project's Lab
# settings (lab/overrides.json) merged into the venv, src/ on the kernels' PYTHONPATH. LAB_TOKEN: a fixed token.
# LAB_LANG=zh_CN: Lab's interface in Chinese, opened on the Chinese edition (notebooks/zh/).
LAB_HOST ?= 127.0.0.1
LAB_PORT ?= 8888
LAB_LANG ?= en
lab: $(STAMP) system-packages
	$(BIN)/python -m ptdeploy.tools.lab --host $(LAB_HOST) --port $(LAB_PORT) --lang $(LAB_LANG)

assets: $(STAMP)
	$(BIN)/python -m ptdeploy.tools.assets

# Notebook 03's C++ programs (cpp/), built with CMake against the venv's torch wheel.
cpp: $(STAMP) system-packages
	$(BIN)/python -m ptdeploy.lessons.cpp_build

# On a machine with a CUDA GPU: the recordings notebooks 03, 06 and 07 read (data/gpu/, a few minutes).
gpu-record: $(STAMP)
	$(BIN)/python scripts/gpu_record.py

# What the notebooks run (cmake, g++, nginx), and for the tests also Chromium (the browser tests drive
# Debian's, never `playwright install`) and wrk. Only what is missing is installed, with apt-get (through
# sudo when not root); without apt-get it stops and names what to install.
system-packages:
	@$(SYSTEM) install notebooks

system-packages-tests:
	@$(SYSTEM) install notebooks tests

# Notebook 01: the classifier service. nginx (src/ptdeploy/serving/nginx.conf) buffers each request and
# cuts off slow clients, then hands it to gunicorn (src/ptdeploy/serving/gunicorn_conf.py) on a Unix
# socket; one supervisor process runs both (python -m ptdeploy.serving.proxy).
SERVE_HOST    ?= 127.0.0.1
SERVE_PORT    ?= 5000
SERVE_WORKERS ?= 1
SERVE_THREADS ?= 8
# MALLOC_ARENA_MAX=2: glibc otherwise keeps up to 8 malloc arenas per core for the worker's threads,
# each of which keeps freed memory for itself: two are enough for a worker that waits on its runtime.
SERVE_ENV = MALLOC_ARENA_MAX=2 PTDEPLOY_HOST=$(SERVE_HOST) PTDEPLOY_PORT=$(SERVE_PORT) \
	PTDEPLOY_WORKERS=$(SERVE_WORKERS) PTDEPLOY_THREADS=$(SERVE_THREADS)

serve: $(STAMP) system-packages
	$(SERVE_ENV) exec $(BIN)/python -m ptdeploy.serving.proxy

# gunicorn alone, listening on SERVE_HOST:SERVE_PORT itself: slow clients can tie up its threads.
serve-direct: $(STAMP)
	$(SERVE_ENV) exec $(BIN)/gunicorn -c python:ptdeploy.serving.gunicorn_conf ptdeploy.serving.wsgi:app

# The same service on Ray Serve (src/ptdeploy/serving/ray_serve.yaml): a local Ray instance (dashboard off),
# SERVE_REPLICAS replicas of 1 CPU each (fewer where the machine holds fewer), Serve's HTTP proxy on
# SERVE_HOST:SERVE_PORT. Ctrl-C shuts Ray down.
SERVE_REPLICAS ?= 2

serve-ray: $(STAMP)
	$(SERVE_ENV) PTDEPLOY_REPLICAS=$(SERVE_REPLICAS) exec $(BIN)/python -m ptdeploy.serving.ray_app

# BENCH_ARGS, e.g. "--rounds 2 --save data/bench/serve.json" (what notebook 01 plots)
bench-serve: $(STAMP) system-packages-tests
	$(BIN)/python -m ptdeploy.tools.serving_bench $(BENCH_ARGS)

# Drift watch (src/ptdeploy/tools/drift.py): .venv-drift (never .venv) with the newest releases of every
# direct dependency, resolved together; nbval over the notebooks there under the portable profile; a
# report in data/drift/DATE.md and .json. It downloads gigabytes, so make test leaves it out.
# DRIFT_HOLD="torch executorch": keep these at their pins.
DRIFT_HOLD ?=
# The C++ builds remember the libtorch they were configured with (CMake's Torch_DIR): built with .venv's,
# they would test the old torch. Fresh ones here, and fresh ones again for .venv afterwards.
CPP_BUILDS := cpp/build cpp/example-app/build
drift: $(STAMP) system-packages
	$(BIN)/python -m ptdeploy.tools.drift setup --hold "$(DRIFT_HOLD)"
	rm -rf $(CPP_BUILDS)
	-$(PORTABLE) .venv-drift/bin/python -m pytest $(NBVAL) -vv notebooks --junitxml=outputs/drift/junit.xml
	rm -rf $(CPP_BUILDS)
	$(BIN)/python -m ptdeploy.tools.drift report

clean:
	rm -rf outputs cpp/build cpp/example-app/build .pytest_cache
