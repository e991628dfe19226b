# Two commands on a fresh machine:  `make book`  (build the book, offline phantom profile)
#                                   `make test`  (run the test suite)
# `make book-real`: the book on phantoms AND on the Cohen/BrixIA radiographs (the cohen profile,
# whose data must be in CHEXP_DATA_DIR or downloadable), one book in $(REAL_BOOK)/html; slower
# (README, "Real radiographs").
# Both create or reuse the virtual environment $(VENV) and install what they need.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.chexp-installed

# Real radiographs: use ../shared/data as the download cache when it exists (nothing is
# downloaded then); otherwise chexp downloads into its own cache when a profile needs them.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/covid-chestxray-dataset),)
export CHEXP_DATA_DIR ?= $(SHARED_DATA)
export CHEXP_SHARED_DATA ?= $(SHARED_DATA)
endif

.PHONY: book book-real sweep test lint install clean
.DEFAULT_GOAL := book

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/chexp reproduce --profile phantom --jobs 2

# The seeds sweep (sweeps/seeds.yaml: 3 notebooks x 5 seeds, resumable) into _build/sweeps/seeds, then the
# book with its "Across seeds" chapter (`make book` alone leaves that chapter without numbers).
sweep: $(STAMP)
	$(BIN)/chexp sweep sweeps/seeds.yaml --scheduler local --output-dir _build/sweeps/seeds
	$(BIN)/chexp reproduce --profile phantom --jobs 2

REAL_BOOK ?= _build/real
book-real: $(STAMP)
	$(BIN)/chexp reproduce --profile phantom --profile cohen --output-dir $(REAL_BOOK)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build outputs
