# Deep Learning Models: an open course.
#   make book     build the rendered book, every chapter executed  -> _build/html/index.html
#   make test     run the whole test suite
#   make lab      JupyterLab on exercises/ with nbgrader's extensions (students)
#   make release  regenerate exercises/ from solutions/ (instructors)
#   make grade ASSIGNMENT=cnn SUBMISSIONS=dir   grade a class (instructors; OUT=grading-out JOBS=n)
#   make hub      JupyterHub for a class on http://127.0.0.1:8000, with nbgrader's exchange (as root)
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

.PHONY: book test lab release grade hub hub-setup lock clean help
help:
	@sed -n '2,8p' Makefile

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .[$(EXTRAS)]
	$(BIN)/python -m pip check
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# (tests/test_hub.py runs `make hub`'s JupyterHub: its proxy is installed first, from npm)
test: $(STAMP) hub/node_modules/.bin/configurable-http-proxy
	bash .ci/system-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# nbgrader's Validate reads nbgrader_config.py from the server's working directory (here, the course
# folder), but its assignment list reads it from the notebook directory (exercises/): putting the
# course folder on Jupyter's config path lets both find the course's settings. LAB_ARGS adds
# options (e.g. `make lab LAB_ARGS=--no-browser`); LAB_DIR opens another folder (the tests use a copy).
# Without a hub, the Assignments panel uses a local nbgrader exchange, LAB_EXCHANGE: the notebooks of
# exercises/ are released into it (only those that changed), so the panel lists them, fetches them into
# the folder Lab serves (exercises/ already holds them: `make lab LAB_DIR=~/my-work` fetches fresh
# copies into an empty folder) and submits into LAB_EXCHANGE/dlcourse/inbound, offline.
LAB_DIR ?= exercises
LAB_EXCHANGE ?= $(CURDIR)/.exchange
# (nbgrader's Assignments panel fetches into its server's working folder, this one, unless told
# otherwise: DLCOURSE_ASSIGNMENT_DIR, read by nbgrader_config.py, is the folder Lab serves.)
lab: $(STAMP)
	$(BIN)/python -m dlcourse.release --exchange $(LAB_EXCHANGE)
	@mkdir -p $(LAB_DIR)
	DLCOURSE_EXCHANGE=$(LAB_EXCHANGE) DLCOURSE_ASSIGNMENT_DIR="$$(cd $(LAB_DIR) && pwd)" \
	  JUPYTER_CONFIG_PATH="$(CURDIR)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(BIN)/jupyter lab --notebook-dir=$(LAB_DIR) $(LAB_ARGS)

release: $(STAMP)
	$(BIN)/python -m dlcourse.release

# Grade every submission with nbgrader, in parallel, each in a bubblewrap sandbox (README).
OUT ?= grading-out
grade: $(STAMP)
	@test -n "$(ASSIGNMENT)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade ASSIGNMENT=cnn SUBMISSIONS=path/to/submissions [OUT=grading-out] [JOBS=4]" >&2; exit 2; }
	$(BIN)/dlcourse grade $(ASSIGNMENT) --submissions $(SUBMISSIONS) --out $(OUT) $(if $(JOBS),--jobs $(JOBS))

# JupyterHub for a class (book/instructors.md, *Running a class on JupyterHub*): Node and npm from
# Debian, configurable-http-proxy from npm into hub/node_modules (hub/package-lock.json), the users,
# the exchange and the instructor's course folder (hub/setup.py), then the hub on 127.0.0.1:HUB_PORT.
# As root. INSTRUCTOR and STUDENTS name the accounts; HUB_STATE keeps the hub's database and the
# demo passwords; EXCHANGE is nbgrader's exchange folder.
INSTRUCTOR ?= instructor
STUDENTS   ?= student1 student2 student3
HUB_STATE  ?= $(CURDIR)/.hub
EXCHANGE   ?= /srv/nbgrader/exchange
HUB_PORT   ?= 8000
hub/node_modules/.bin/configurable-http-proxy: hub/package.json hub/package-lock.json
	bash .ci/system-deps.sh hub
	npm ci --prefix hub --no-audit --no-fund --loglevel=error
	@touch $@

hub-setup: $(STAMP) hub/node_modules/.bin/configurable-http-proxy
	@test "$$(id -u)" = 0 || { echo "make hub creates users and the exchange: run it as root (sudo make hub)" >&2; exit 2; }
	$(BIN)/python hub/setup.py --instructor $(INSTRUCTOR) --students $(STUDENTS) --state $(HUB_STATE) --exchange $(EXCHANGE)

hub: hub-setup
	@echo "JupyterHub: http://127.0.0.1:$(HUB_PORT)/hub/login (passwords of the demo users: $(HUB_STATE)/passwords.txt)"
	DLCOURSE_HUB_STATE=$(HUB_STATE) DLCOURSE_EXCHANGE=$(EXCHANGE) DLCOURSE_HUB_PORT=$(HUB_PORT) \
	  $(BIN)/jupyterhub -f hub/jupyterhub_config.py $(HUB_ARGS)

# Refresh the pins after changing pyproject.toml (needs network access to PyPI).
lock:
	rm -rf /tmp/dlcourse-lock && $(PYTHON) -m venv /tmp/dlcourse-lock
	/tmp/dlcourse-lock/bin/pip install --quiet --upgrade "pip>=24" && /tmp/dlcourse-lock/bin/pip install --quiet -e .[$(EXTRAS)]
	/tmp/dlcourse-lock/bin/pip freeze --exclude-editable --exclude dlcourse | sed '/^-e /d' > constraints.txt

clean:
	rm -rf _build
