# noised: build, test, demo and install. Every target installs what it is missing first.
SWIFT      ?= swift
PYTHON     ?= python3
PREFIX     ?= /usr/local
DESTDIR    ?=
BIN        := .build/release/noised
PY_IMPORTS := zmq, numpy, scipy, ml_dtypes, safetensors, pytest, yaml, torch, ot
PY_PACKAGES := pyzmq numpy scipy ml_dtypes safetensors pytest PyYAML torch==2.13.0+cpu POT==0.9.7.post1
# diffusers for the recipe tests (its schedulers and training_utils), without the dependency
# resolver: it could otherwise bring a newer torch. The second list is what those modules import.
DIFFUSERS := diffusers==0.42.1
DIFFUSERS_DEPS := importlib_metadata filelock 'huggingface_hub>=1.32,<3' regex requests Pillow
DIFFUSERS_CHECK := from diffusers import FlowMatchEulerDiscreteScheduler; import diffusers.training_utils

.PHONY: all deps build test test-swift test-python demo bench fuzz install clean

all: build

# Debian's libzmq (CURVE-enabled) and the Python packages the client and its tests use.
deps:
	@dpkg -s libzmq3-dev >/dev/null 2>&1 || { \
	  echo "installing libzmq3-dev"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libzmq3-dev >/dev/null; }
	@$(PYTHON) -c "import $(PY_IMPORTS)" 2>/dev/null || { \
	  echo "installing Python packages: $(PY_PACKAGES)"; \
	  $(PYTHON) -m pip install -q $(PY_PACKAGES); }
	@$(PYTHON) -c "$(DIFFUSERS_CHECK)" 2>/dev/null || { \
	  echo "installing $(DIFFUSERS) (no dependencies) and $(DIFFUSERS_DEPS)"; \
	  $(PYTHON) -m pip install -q --no-deps $(DIFFUSERS) && \
	  $(PYTHON) -m pip install -q $(DIFFUSERS_DEPS); }

build: deps
	$(SWIFT) build -c release --product noised

# One release build serves both suites: the statistical tests need an optimised kernel.
test: deps
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build
	NOISED_BIN=$(CURDIR)/$(BIN) PYTHONPATH=$(CURDIR)/clients/python $(PYTHON) -m pytest -q clients/python/tests

demo: build
	@scripts/demo.sh $(BIN)

# The kernel beside numpy and memcpy, the pipeline beside a plain ZeroMQ relay, one output beside a
# copy fan-out to two, the pipeline without and with exact batch coupling, the coupling steps beside
# the kernel, then the Python consumer's receive rate with and without memory reuse (about 13 minutes).
bench: build
	$(BIN) bench kernel
	$(BIN) bench pipeline
	$(BIN) bench pipeline --fanout
	$(BIN) bench pipeline --coupling assignment
	$(BIN) bench coupling
	$(PYTHON) clients/python/benchmarks/receive.py

# libFuzzer on the safetensors reader, input validation with the output plan, the feedback parser and
# the config decoder (σ sampled from each accepted config), FUZZ_SECONDS each (docs/operations.md).
FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh build
	scripts/fuzz.sh run $(FUZZ_SECONDS)

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/noised
	@# The unit's ExecStart points at the binary where this PREFIX puts it.
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	@# The template noised@.service runs one daemon per /etc/noised/NAME.yaml.
	for unit in noised.service noised@.service; do \
	  sed 's#^ExecStart=/usr/local/bin/noised#ExecStart=$(PREFIX)/bin/noised#' systemd/$$unit \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/$$unit; \
	done
	@# An operator's config is never overwritten.
	@if [ -e $(DESTDIR)/etc/noised/noised.yaml ]; then \
	  echo "keeping existing $(DESTDIR)/etc/noised/noised.yaml"; \
	else install -D -m 0644 config/noised.yaml $(DESTDIR)/etc/noised/noised.yaml; fi

clean:
	rm -rf .build
