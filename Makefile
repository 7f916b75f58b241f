# ganlab: one command sets up and runs each job. Every target creates the virtual
# environment .venv on first use (torch pinned to the release tested here).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ganlab-installed
TORCH  := torch==2.14.1 torchvision==0.29.1
# The reference solutions, for the jobs that need a working DCGAN (see ganlab/_solutions.py).
SOLVED := GANLAB_SOLUTIONS=1

.PHONY: setup demo test test-fast lab check stubs check-stubs solutions-branch student-copy clean help

help:
	@echo "make demo              set up, then train the reference DCGAN on the offline MNIST slice (~1 min CPU)"
	@echo "make test              set up, then run the whole test suite (unit tests, checks, nbval)"
	@echo "make lab               set up, then open JupyterLab on the notebooks"
	@echo "make check             run the graded checks on this copy, as the instructor's grader does"
	@echo "make stubs             re-derive ganlab/ stubs and notebooks/ from solutions/ (instructors)"
	@echo "make solutions-branch  (re)create the git branch 'solutions' from HEAD (instructors)"
	@echo "make student-copy DEST=../ganlab-student   export a copy without solutions (instructors)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else "ganlab needs Python >= 3.9; set PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(SOLVED) $(PY) -m ganlab train --preset demo  # run again: resumes or reports it done
	@echo "Pictures: runs/demo/samples.png, runs/demo/curves.png, runs/demo/training.gif"

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

check: $(STAMP)
	$(PY) -m ganlab check .

stubs: $(STAMP)
	$(PY) -m ganlab.instructor stubs

check-stubs: $(STAMP)
	$(PY) -m ganlab.instructor stubs --check

solutions-branch: $(STAMP)
	$(PY) -m ganlab.instructor solutions-branch

student-copy: $(STAMP)
	@test -n "$(DEST)" || { echo "usage: make student-copy DEST=path/to/new/folder"; exit 2; }
	$(PY) -m ganlab.instructor export-student "$(DEST)"

clean:
	rm -rf runs/demo .pytest_cache
