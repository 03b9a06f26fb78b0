# 码上联 — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
export FLASK_APP := backend

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## run: set up, migrate, load the demo county once, and serve on http://127.0.0.1:$(PORT) with the local WeChat
## sandbox at /_wechat/ and the outbox and poster workers (scripts/run.sh)
run: $(VENV)/.installed
	scripts/system-deps.sh
	PORT=$(PORT) scripts/run.sh

## test: ruff, then pytest on SQLite, on PostgreSQL, and in Chromium (says what it skipped)
test: $(VENV)/.installed
	scripts/system-deps.sh --test
	scripts/run-tests.sh

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: the benchmarks in bench/, each printing ratios against a baseline measured in the same run; the province
## bench (bench/province.py) builds its 10,000,000 items once and keeps them (BENCH_PROVINCE_SCALE=0.01 make bench: 1 %)
bench: $(VENV)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-output
