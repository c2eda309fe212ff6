# Tentacle. `make test` is what CI runs (through .ci/run); `make check` fails
# when generated code or go.mod/go.sum are stale.
GO      ?= go
BIN     := $(CURDIR)/bin
# Tools are pinned here and built from the Go module proxy into ./bin.
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
BUF                := $(BIN)/buf-$(BUF_VERSION)
PROTOC_GEN_GO      := $(BIN)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
PROTOC_GEN_GO_GRPC := $(BIN)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/tentacle-deploy/tentacle/internal/version.Version=$(VERSION)

.PHONY: build test lint proto check run tools fuzz clean faults bench

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test:
	$(GO) test -race -count=1 -timeout 15m ./...

# Fault injection (docs/RELIABILITY.md): every TestFaults scenario
# FAULT_RUNS times with random timing; TENTACLE_FAULT_SEED=S replays a seed.
# One line of figures per scenario goes to bin/faults-report.txt.
FAULT_RUNS ?= 10
faults:
	@mkdir -p $(BIN) && rm -f $(BIN)/faults-report.txt
	TENTACLE_REQUIRE_DOCKER=1 TENTACLE_FAULT_RUNS=$(FAULT_RUNS) TENTACLE_FAULT_REPORT=$(BIN)/faults-report.txt \
		$(GO) test -race -count=1 -timeout 60m -run '^TestFaults$$' ./internal/e2e; \
		status=$$?; cat $(BIN)/faults-report.txt 2>/dev/null; exit $$status

# The benchmark harness (docs/PERFORMANCE.md): builds the binaries, then
# prints the table. BENCH_FLAGS=--agents 1000 --scenarios dispatch, -o json…
BENCH_FLAGS ?=
bench: build
	$(BIN)/tentacle-bench --bin-dir $(BIN) $(BENCH_FLAGS)

# Runs the server with a temporary data dir and a local agent.
run:
	$(GO) run ./cmd/tentacle-server dev

lint: tools
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(BUF) lint

proto: tools
	$(BUF) lint
	PATH=$(BIN)/gen:$$PATH $(BUF) generate

check: tools lint
	$(GO) mod tidy -diff
	@rm -rf $(BIN)/proto-check && mkdir -p $(BIN)/proto-check
	PATH=$(BIN)/gen:$$PATH $(BUF) generate -o $(BIN)/proto-check
	@cd $(BIN)/proto-check/proto && for f in $$(find . -name '*.pb.go'); do \
		cmp -s $$f $(CURDIR)/proto/$$f || { echo "generated code is stale: proto/$$f (run make proto)"; exit 1; }; done
	@test "$$(cd $(BIN)/proto-check/proto && find . -name '*.pb.go' | wc -l)" = "$$(cd proto && find . -name '*.pb.go' | wc -l)" || { echo "generated file set differs (run make proto)"; exit 1; }
	@echo "check: generated code and go.mod are up to date"

# Short fuzzing of every parser; FUZZTIME=1m make fuzz for longer.
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; done

tools: $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)

$(BUF):
	GOBIN=$(BIN)/tmp $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	mv $(BIN)/tmp/buf $@
$(PROTOC_GEN_GO):
	GOBIN=$(BIN)/tmp $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	mkdir -p $(BIN)/gen && mv $(BIN)/tmp/protoc-gen-go $@ && ln -sf $@ $(BIN)/gen/protoc-gen-go
$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(BIN)/tmp $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	mkdir -p $(BIN)/gen && mv $(BIN)/tmp/protoc-gen-go-grpc $@ && ln -sf $@ $(BIN)/gen/protoc-gen-go-grpc

clean:
	rm -rf $(BIN)

# Agent .deb and .rpm (install/nfpm.yaml) in bin/packages, from a static
# linux/amd64 build; package versions come from install/pkgversion.sh.
NFPM_VERSION := v2.44.0
NFPM         := $(BIN)/nfpm-$(NFPM_VERSION)
.PHONY: packages
packages: $(NFPM)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-amd64/tentacle ./cmd/tentacle
	# The packaged unit comes from the same template as `tentacle install`.
	$(BIN)/linux-amd64/tentacle systemd-unit --config /etc/tentacle/agent.yaml > $(BIN)/linux-amd64/tentacle.service
	@mkdir -p $(BIN)/packages
	DEB_VERSION=$$(sh install/pkgversion.sh deb '$(VERSION)') && \
		TENTACLE_PKG_VERSION=$$DEB_VERSION $(NFPM) package --config install/nfpm.yaml --packager deb \
		--target $(BIN)/packages/tentacle_$${DEB_VERSION}_amd64.deb
	RPM_VERSION=$$(sh install/pkgversion.sh rpm '$(VERSION)') && \
		TENTACLE_PKG_VERSION=$$RPM_VERSION $(NFPM) package --config install/nfpm.yaml --packager rpm \
		--target $(BIN)/packages/tentacle_$${RPM_VERSION}_amd64.rpm
$(NFPM):
	GOBIN=$(BIN)/tmp $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	mv $(BIN)/tmp/nfpm $@
