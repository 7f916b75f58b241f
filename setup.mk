# The virtual environment every make target sets up on first use, shared by the instructor's
# Makefile (EXTRAS=dev) and the student copy's (EXTRAS=lab): torch pinned to the release tested.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ganlab-installed
TORCH  := torch==2.14.1 torchvision==0.29.1

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else "ganlab needs Python >= 3.9; set PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@
