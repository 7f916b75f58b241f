# ganlab: one command sets up and runs each job. Every target creates the virtual
# environment .venv on first use (setup.mk; the student copy's Makefile shares it).
.DEFAULT_GOAL := help
EXTRAS := dev
include setup.mk
# The reference solutions, for the jobs that need a working DCGAN (see ganlab/_solutions.py).
SOLVED := GANLAB_SOLUTIONS=1

.PHONY: setup demo test test-fast lab check stubs check-stubs solutions-branch student-copy clean help

help:
	@echo "make demo              set up, then train the reference DCGAN on the offline MNIST slice (~1 min CPU)"
	@echo "make test              set up, then run the whole test suite (unit tests, checks, nbval)"
	@echo "make lab               set up, then open JupyterLab on the kit (notebooks/ and ganlab/)"
	@echo "make check             run the graded checks on this copy, as the instructor's grader does"
	@echo "make stubs             re-derive ganlab/ stubs and notebooks/ from solutions/ (instructors)"
	@echo "make solutions-branch  (re)create the git branch 'solutions' from HEAD (instructors)"
	@echo "make student-copy DEST=../ganlab-student REPO=owner/name   a copy for students' own repository (instructors)"

demo: $(STAMP)
	$(SOLVED) $(PY) -m ganlab train --preset demo  # run again: resumes or reports it done
	@echo "Pictures: runs/demo/samples.png, runs/demo/curves.png, runs/demo/training.gif"

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	# One worker per core (pytest-xdist); a test file stays on one worker, so the costly
	# per-module set-ups (a Colab-like runtime, a graded class) are built once.
	$(PY) -m pytest -n auto --dist loadfile

test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow"

# The whole folder, not only notebooks/: the notebooks send students to ganlab/*.py.
lab: $(STAMP)
	$(PY) -m jupyterlab --ServerApp.root_dir="$(CURDIR)" notebooks/00_setup.ipynb

check: $(STAMP)
	$(PY) -m ganlab check .

stubs: $(STAMP)
	$(PY) -m ganlab.instructor stubs

check-stubs: $(STAMP)
	$(PY) -m ganlab.instructor stubs --check

solutions-branch: $(STAMP)
	$(PY) -m ganlab.instructor solutions-branch

student-copy: $(STAMP)
	@test -n "$(DEST)" -a -n "$(REPO)" || { echo "usage: make student-copy DEST=path/to/new/folder REPO=owner/name [BRANCH=main]"; exit 2; }
	$(PY) -m ganlab.instructor export-student "$(DEST)" --repo "$(REPO)" --branch "$(or $(BRANCH),main)"

clean:
	rm -rf runs/demo .pytest_cache
