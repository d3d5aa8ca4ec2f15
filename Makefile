# surge: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DURATION ?= 20s

.PHONY: setup demo test lint bench clean

$(BIN)/surge: pyproject.toml setup.py src/surge/engine/_hitloop.c src/surge/engine/_timerfd.c src/surge/engine/http/_conncore.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(BIN)/surge  ## create .venv and install surge with its test tools

demo: setup  ## start the demo shop, load test it for $(DURATION), print the summary, stop it
	$(BIN)/surge demo run examples/shop.py --duration $(DURATION)

test: setup  ## the whole test suite
	$(BIN)/python -m pytest -p no:cacheprovider tests

lint: setup
	$(BIN)/ruff check src tests bench examples

bench: setup  ## peer-tool comparison (needs `bash bench/setup.sh` once)
	$(BIN)/python bench/peers.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info runs .surge
