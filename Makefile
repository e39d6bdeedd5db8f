# hmg-book: two commands do everything.
#   make book   set up .venv and build the book (chapters executed, cpu profile)
#   make test   set up .venv, lint, run the tests (chapters in the quick profile)
#               and build the quick-profile book, warnings as errors, then open
#               every page of it in headless Chromium (make browser-check)
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

# The browser check: Debian's Chromium, and local copies (exact versions, from
# the npm registry) of what the built pages fetch from CDNs, served to the
# browser in their place. The `requirejs` entry is rebuilt into the
# `require.min.js` that pages load with an integrity hash; uglify-js 3.0.28
# (`-c -m`) reproduces that file byte for byte.
BROWSER_DIR    := $(VENV)/browser
BROWSER_NPM    := mathjax@3.2.2 requirejs@2.3.4 @jupyter-widgets/html-manager@1.0.6
BROWSER_UGLIFY := uglify-js@3.0.28
BROWSER_HTML   ?= $(QUICK_OUT)/_build/html
SCREENSHOTS    ?= _build/screenshots

.PHONY: help setup setup-book setup-browser setup-chromium setup-browser-assets book test \
	lint pytest book-quick browser-check clean

help:
	@echo "make book   build the book (sets up .venv on first use)"
	@echo "make test   lint + tests + quick book build (sets up .venv on first use)"
	@echo "make browser-check   open every page of the quick build in headless Chromium"

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

# Chromium: Debian's package, installed only when missing, and only where
# apt-get can run (as root, or through sudo without a password). Elsewhere the
# browser check is skipped with a note (HMG_CHROMIUM=/path/to/chrome enables it).
setup-chromium:
	@if [ -n "$${HMG_CHROMIUM:-}" ] || [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then sudo=none; \
	elif [ "$$(id -u)" = 0 ]; then sudo=; \
	elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else sudo=none; fi; \
	if [ "$$sudo" = none ]; then \
	  echo "No Chromium and no apt-get to install it: the browser check will be skipped." \
	       "Install Chromium (apt install chromium) or set HMG_CHROMIUM=/path/to/chrome."; \
	  exit 0; fi; \
	install="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium"; \
	echo "Installing Debian's chromium"; \
	$$install || { $$sudo apt-get update -q && $$install; }

# Local copies of the pages' CDN scripts, reinstalled when the pins change.
setup-browser-assets:
	@want="$(BROWSER_NPM) $(BROWSER_UGLIFY)"; \
	if [ "$$(cat $(BROWSER_DIR)/.installed 2>/dev/null)" = "$$want" ]; then exit 0; fi; \
	if ! command -v npm >/dev/null; then \
	  echo "No npm: the browser check will be skipped (install Node.js and npm, then make setup-browser)."; \
	  exit 0; fi; \
	echo "Installing $$want into $(BROWSER_DIR)"; \
	rm -rf $(BROWSER_DIR) && mkdir -p $(BROWSER_DIR)/packs && cd $(BROWSER_DIR); \
	for spec in $(BROWSER_NPM); do \
	  name="$${spec%@*}"; \
	  tgz="$$(npm pack --silent --pack-destination packs "$$spec" | tail -n 1)"; \
	  mkdir -p "packages/$$name" && tar -xzf "packs/$$tgz" -C "packages/$$name" --strip-components=1; \
	done; \
	npm install --silent --prefix tools --no-save --no-package-lock --no-audit --no-fund $(BROWSER_UGLIFY); \
	tools/node_modules/.bin/uglifyjs packages/requirejs/require.js -c -m -o packages/requirejs/require.min.js; \
	rm -rf packs tools; echo "$$want" > .installed

setup-browser: setup setup-chromium setup-browser-assets

# Chapters are executed one at a time, watched (tests/chapter_execution.py: each
# one's time against its profile's budget, a stalled cell reported while it
# waits), into the build's jupyter-cache, from which jupyter-book renders them.
# The cell timeout is about 6x the slowest cpu-profile cell on a quiet 2-core
# machine (chapter 4's loss ablations, 155 s), so a loaded machine is slow, not
# failed; keep execute.timeout in _config.yml, jupyter-book's own, the same.
BOOK_CELL_TIMEOUT := 900
CHAPTERS = $(sort $(wildcard book/*.ipynb))

book: setup-book
	$(BIN)/python tests/chapter_execution.py --cache _build/.jupyter_cache \
	    --timeout $(BOOK_CELL_TIMEOUT) $(CHAPTERS)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	$(BIN)/python tests/check_built_book.py _build/html
	@echo "The book: $(CURDIR)/_build/html/index.html"

lint: setup
	$(BIN)/ruff check .

pytest: setup setup-browser
	$(QUICK_ENV) $(BIN)/python -m pytest

book-quick: setup
	$(QUICK_ENV) $(BIN)/jupyter-book build . --warningiserror --keep-going --path-output $(QUICK_OUT)
	$(BIN)/python tests/check_built_book.py $(QUICK_OUT)/_build/html
	@echo "The quick book: $(CURDIR)/$(QUICK_OUT)/_build/html/index.html"

# Every page of the built book in headless Chromium (BROWSER_HTML=_build/html
# checks the full build): images, internal links, console errors, MathJax,
# widgets after their static figures; a screenshot of each page.
browser-check: setup-browser
	$(BIN)/python tests/check_pages_in_browser.py $(BROWSER_HTML) --screenshots $(SCREENSHOTS)

test: lint pytest book-quick
	@$(MAKE) --no-print-directory browser-check

clean:
	rm -rf _build .pytest_cache .ruff_cache
