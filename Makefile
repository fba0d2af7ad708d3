# paperwire: `make demo` runs it on the bundled sample, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install demo test lint bench-ingest clean

install: $(STAMP)

# Re-installs only when the dependency list changes; the package itself is installed editable.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "paperwire needs Python >= 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

demo: install
	$(BIN)/paperwire import sample
	$(BIN)/paperwire stats
	$(BIN)/paperwire serve --host $(HOST) --port $(PORT)

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: install
	$(BIN)/ruff check paperwire tests bench
	$(BIN)/ruff format --check paperwire tests bench

bench-ingest: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache
