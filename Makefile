# hmg-book: two commands do everything.
#   make book   set up .venv and build the book (chapters executed, cpu profile)
#   make test   set up .venv, lint, run the tests (chapters in the quick profile)
#               and build the quick-profile book, warnings as errors
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# The quick build lives apart from the real one: its html, its execution
# cache and its results records (jupyter-cache keys on code, not HMG_QUICK).
QUICK_OUT := _build/quick
QUICK_ENV := HMG_QUICK=1 HMG_RESULTS_DIR=$(CURDIR)/$(QUICK_OUT)/results

.PHONY: help setup setup-book book test lint pytest book-quick clean

help:
	@echo "make book   build the book (sets up .venv on first use)"
	@echo "make test   lint + tests + quick book build (sets up .venv on first use)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# Set-up is keyed on pyproject.toml: nothing is reinstalled while it is unchanged.
$(VENV)/.stamp-book: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[book]'
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[book,test,coco]'
	touch $@

setup-book: $(VENV)/.stamp-book
setup: $(VENV)/.stamp-test

book: setup-book
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	$(BIN)/python tests/check_built_book.py _build/html
	@echo "The book: $(CURDIR)/_build/html/index.html"

lint: setup
	$(BIN)/ruff check .

pytest: setup
	$(QUICK_ENV) $(BIN)/python -m pytest

book-quick: setup
	$(QUICK_ENV) $(BIN)/jupyter-book build . --warningiserror --keep-going --path-output $(QUICK_OUT)
	$(BIN)/python tests/check_built_book.py $(QUICK_OUT)/_build/html
	@echo "The quick book: $(CURDIR)/$(QUICK_OUT)/_build/html/index.html"

test: lint pytest book-quick

clean:
	rm -rf _build .pytest_cache .ruff_cache
