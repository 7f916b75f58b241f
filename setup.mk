# The virtual environment every make target sets up on first use, shared by the instructor's
# Makefile (EXTRAS=dev) and the student copy's (EXTRAS=lab): torch pinned to the release tested.
# That torch release has wheels for Python 3.10 to 3.14 only, so make takes `python3` where it is
# one of those and otherwise the newest python3.1X on PATH that is (macOS's own python3 is 3.9;
# a python3 of 3.15, as Homebrew or a rolling distribution may have, has no torch 2.14 wheels);
# `make PYTHON=/path/to/python` chooses one.
SUPPORTED := import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 14))
ifndef PYTHON
PYTHON := $(shell for p in python3 python3.14 python3.13 python3.12 python3.11 python3.10; do \
	$$p -c '$(SUPPORTED)' 2>/dev/null && { echo $$p; exit 0; }; \
	done; echo python3)
endif
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ganlab-installed
TORCH  := torch==2.14.1 torchvision==0.29.1

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c '$(SUPPORTED)' 2>/dev/null || { \
		echo "ganlab needs Python >= 3.10 and <= 3.14 (PyTorch 2.14 has wheels for those only); '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
		echo "Install Python 3.12 (python.org, 'brew install python@3.12', 'apt install python3.12-venv'), then run make again, or name it: make PYTHON=/path/to/python3.12 ..."; \
		exit 1; } >&2
	$(PY) -c '$(SUPPORTED)' 2>/dev/null || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@
