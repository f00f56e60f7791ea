# Deep Learning Models: an open course.
#   make book     build the rendered book, every chapter executed  -> _build/html/index.html
#   make test     run the whole test suite
#   make lab      JupyterLab on exercises/ with nbgrader's extensions (students)
#   make release  regenerate exercises/ from solutions/ (instructors)
#   make grade ASSIGNMENT=cnn SUBMISSIONS=dir   grade a class (instructors; OUT=grading-out JOBS=n)
# Every target creates the virtual environment .venv first if it is missing or stale.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The course package with the tools of developers and instructors (a student's `pip install` gets
# only the core: pyproject.toml).
EXTRAS := book,test,grade,hub
# TensorFlow's C++ log lines go to stderr; keep them out of the book and the graded notebooks.
export TF_CPP_MIN_LOG_LEVEL := 3
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: book test lab release grade lock clean help
help:
	@sed -n '2,7p' Makefile

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .[$(EXTRAS)]
	$(BIN)/python -m pip check
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: $(STAMP)
	bash .ci/system-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# nbgrader's Validate reads nbgrader_config.py from the server's working directory (here, the course
# folder), but its assignment list reads it from the notebook directory (exercises/): putting the
# course folder on Jupyter's config path lets both find the course's settings. LAB_ARGS adds
# options (e.g. `make lab LAB_ARGS=--no-browser`); LAB_DIR opens another folder (the tests use a copy).
LAB_DIR ?= exercises
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(CURDIR)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(BIN)/jupyter lab --notebook-dir=$(LAB_DIR) $(LAB_ARGS)

release: $(STAMP)
	$(BIN)/python -m dlcourse.release

# Grade every submission with nbgrader, in parallel, each in a bubblewrap sandbox (README).
OUT ?= grading-out
grade: $(STAMP)
	@test -n "$(ASSIGNMENT)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade ASSIGNMENT=cnn SUBMISSIONS=path/to/submissions [OUT=grading-out] [JOBS=4]" >&2; exit 2; }
	$(BIN)/dlcourse grade $(ASSIGNMENT) --submissions $(SUBMISSIONS) --out $(OUT) $(if $(JOBS),--jobs $(JOBS))

# Refresh the pins after changing pyproject.toml (needs network access to PyPI).
lock:
	rm -rf /tmp/dlcourse-lock && $(PYTHON) -m venv /tmp/dlcourse-lock
	/tmp/dlcourse-lock/bin/pip install --quiet --upgrade "pip>=24" && /tmp/dlcourse-lock/bin/pip install --quiet -e .[$(EXTRAS)]
	/tmp/dlcourse-lock/bin/pip freeze --exclude-editable --exclude dlcourse | sed '/^-e /d' > constraints.txt

clean:
	rm -rf _build
