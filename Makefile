# devmesh build, run and test entry points. See README.md.
GO        ?= go
BIN       := bin/devmesh
DATA_DIR  ?= .devmesh
LISTEN    ?= 127.0.0.1:8080
# Official Tailscale binaries for the interop tests, built from the same
# tailscale.com version we pin.
TS_VERSION := $(shell $(GO) list -m -f '{{.Version}}' tailscale.com)
TOOLS_DIR  := $(CURDIR)/.tools
TEST_FLAGS ?= -race -timeout 45m

.PHONY: build run test test-netlab lint tools clean bench

build:
	$(GO) build -o $(BIN) ./cmd/devmesh

run: build
	$(BIN) server --data-dir $(DATA_DIR) --listen $(LISTEN)

tools: $(TOOLS_DIR)/tailscaled $(TOOLS_DIR)/tailscale

$(TOOLS_DIR)/tailscaled $(TOOLS_DIR)/tailscale:
	GOBIN=$(TOOLS_DIR) $(GO) install tailscale.com/cmd/tailscaled@$(TS_VERSION) tailscale.com/cmd/tailscale@$(TS_VERSION)

test: build tools lint
	DEVMESH_TOOLS_DIR=$(TOOLS_DIR) DEVMESH_BIN=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) ./...

# The network-namespace lab alone (root), verbose, ending with its table.
test-netlab: build tools
	DEVMESH_TOOLS_DIR=$(TOOLS_DIR) DEVMESH_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 10m -v ./internal/netlab/

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin $(TOOLS_DIR)

# Benchmarks beside same-run baselines (docs/benchmarks.md). They never fail
# on a number; BENCH_SHORT=1 runs small sizes (CI).
bench: build
	$(GO) run ./bench/cmd/benchrun -devmesh $(BIN)
