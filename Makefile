# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is pinned first: the CPU wheel on disk; a looser requirement would pull a CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test install install-test bench clean

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH)"
	touch $@

$(VENV)/.cryofm: $(VENV)/.base pyproject.toml
	$(PIP) install -e .
	touch $@

$(VENV)/.test: $(VENV)/.cryofm plugins/napari/pyproject.toml
	$(PIP) install -e ".[test,napari]" -e plugins/napari
	touch $@

install: $(VENV)/.cryofm
install-test: $(VENV)/.test

demo: install
	$(VENV)/bin/cryofm info data/emd_3488/emd_3488.mrc
	mkdir -p out
	$(VENV)/bin/cryofm denoise data/emd_3488/emd_3488.mrc -o out/emd_3488_denoised.mrc --force
	@echo "demo: restored map, report (JSON) and figure (PNG) are in out/"

test: install-test
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/fourier.py
	$(PY) benchmarks/prior_quality.py
	$(PY) benchmarks/prior_speed.py
	$(PY) benchmarks/restore.py

clean:
	rm -rf out .pytest_cache
