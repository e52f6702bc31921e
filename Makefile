# Two commands matter: `make dev` (the offline dev stack) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHROMIUM := /usr/bin/chromium

.PHONY: dev test setup browser clean security bench lock metrics

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==26.2.1"  # chalice 1.34 wants pip < 26.3
	$(PY) -m pip install --quiet -r requirements.txt  # the Lambda package's lock, hash-checked
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Re-compile the Lambda package's lock from requirements.in (pip-tools, with hashes).
lock:
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.txt requirements.in
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file tests/lambda-runtime.txt tests/lambda-runtime.in

# What the Lambda python3.11 runtime provides (boto3 and its dependencies), for the test that runs
# the unzipped deployment package with nothing else on the path (tests/test_lambda_package.py).
LAMBDA_RUNTIME := .lambda-runtime
$(LAMBDA_RUNTIME)/.installed: tests/lambda-runtime.txt $(VENV)/.installed
	rm -rf $(LAMBDA_RUNTIME)
	$(PY) -m pip install --quiet --no-deps --require-hashes --target $(LAMBDA_RUNTIME) -r tests/lambda-runtime.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

dev: setup
	$(PY) -m devstack --custom-domain

# The app's CloudWatch metrics of the last `make dev` run, summed (its EMF lines, kept in .devstack/).
metrics: setup
	$(PY) -m devstack.metrics

# Two worker processes (pytest-xdist), each a serial session with its own dev stacks: on two
# cores the suite waits on browsers and servers more than it computes. `-n 3` was no faster.
test: setup browser $(LAMBDA_RUNTIME)/.installed
	$(PY) -m pytest -n 2 --dist worksteal

# The security suites alone, with a table of attacks refused, faults survived, fuzz cases,
# concurrent sign-ins and log lines checked (they also run in `make test`).
security: setup
	$(PY) tests/security_report.py

# Cold starts beside the Node peers, Cognito's 5 s per trigger, package size, calls and time per sign-in (not a test; a few min).
bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) node_modules .lambda-runtime .devstack .pytest_cache .hypothesis
