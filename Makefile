# The two entry points of the README: `make demo` (the lab up and the
# handout's sessions replayed) and `make test`. Both install what a fresh
# machine lacks first: Debian packages on the host, a virtual environment
# with labenv, and the lab's Docker images.

PYTHON ?= python3
VENV ?= .venv
LABENV = $(VENV)/bin/labenv
PYTEST_ARGS ?=

.PHONY: setup host-deps venv images test demo down clean

setup: host-deps venv

host-deps:
	bash scripts/install-host-deps

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade --quiet pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

images: setup
	$(LABENV) build

test: images
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: images
	$(LABENV) demo

down: venv
	$(LABENV) down --all

clean: down
	rm -rf $(VENV) build
