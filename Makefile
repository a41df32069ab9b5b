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

# The release targets: every one builds and vets in `make test` (cross).
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
DIST      ?= dist
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/devmesh/devmesh/internal/buildinfo.version=$(VERSION)

.PHONY: build run test test-netlab lint tools clean bench cross release dist web-vendor FORCE

build:
	$(GO) build -o $(BIN) ./cmd/devmesh

run: build
	$(BIN) server --data-dir $(DATA_DIR) --listen $(LISTEN)

# web-vendor fetches the browser front ends' pinned npm packages and copies
# the files they serve into their embed folders, where they are committed
# (so build and run need no npm): for each coordinator/*/package.json, an
# `npm ci` (install scripts off) and then the package's own "vendor" script.
WEB_NPM_DIRS := $(patsubst %/package.json,%,$(wildcard coordinator/*/package.json))
web-vendor:
	@set -e; for d in $(WEB_NPM_DIRS); do \
		echo "web-vendor: $$d"; \
		( cd $$d && if [ -f package-lock.json ]; then npm ci --ignore-scripts --no-audit --no-fund; \
		  else npm install --ignore-scripts --no-audit --no-fund; fi && npm run --silent vendor ); \
		rm -rf $$d/node_modules; \
	done

tools: $(TOOLS_DIR)/tailscaled $(TOOLS_DIR)/tailscale

$(TOOLS_DIR)/tailscaled $(TOOLS_DIR)/tailscale:
	GOBIN=$(TOOLS_DIR) $(GO) install tailscale.com/cmd/tailscaled@$(TS_VERSION) tailscale.com/cmd/tailscale@$(TS_VERSION)

test: build tools lint cross
	DEVMESH_TOOLS_DIR=$(TOOLS_DIR) DEVMESH_BIN=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) ./...

# The network-namespace lab alone (root), verbose, ending with its table.
test-netlab: build tools
	DEVMESH_TOOLS_DIR=$(TOOLS_DIR) DEVMESH_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 10m -v ./internal/netlab/

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# cross type-checks every package, tests included, for every platform, so a
# Linux-only construct cannot land. Three at a time: vet is mostly
# single-threaded per package, so this keeps 2 cores busy.
cross:
	@$(MAKE) --no-print-directory -j3 $(addprefix cross-,$(subst /,-,$(PLATFORMS)))

cross-%: FORCE
	@echo "vet $*"
	@GOOS=$(word 1,$(subst -, ,$*)) GOARCH=$(word 2,$(subst -, ,$*)) $(GO) vet ./...

# release (alias dist) cross-builds devmesh for every platform, stamped with
# VERSION, into $(DIST) with SHA256SUMS: the directory `devmesh server
# --binaries-dir` serves to workspaces.
release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "build $(DIST)/devmesh-$$os-$$arch$$ext"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
			-o $(DIST)/devmesh-$$os-$$arch$$ext ./cmd/devmesh; \
	done
	cd $(DIST) && sha256sum devmesh-* > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

dist: release

clean:
	rm -rf bin $(DIST) $(TOOLS_DIR)

# Benchmarks beside same-run baselines (docs/benchmarks.md). They never fail
# on a number; BENCH_SHORT=1 runs small sizes (CI).
bench: build
	$(GO) run ./bench/cmd/benchrun -devmesh $(BIN)

FORCE:
