# glowvoc build and test entry points. `make test` is what CI runs.
GO ?= go
# Packages cheap enough to run under the race detector.
RACE_PKGS = ./audio/... ./melspec/... ./internal/... ./train/corpus/... ./server/...
# Model conformance tests: heavy float work, run without -race (the
# concurrency tests among them also run under -race, below).
PLAIN_PKGS = ./vocoder/... ./train/... ./cmd/... ./weights/...

.PHONY: test vet build bench fuzz

# The whole suite: vet and gofmt, unit and conformance tests, and a short
# run of every fuzz target (FUZZTIME each).
test: FUZZTIME ?= 3s
test: vet
	$(GO) test -race -count=1 $(RACE_PKGS)
	$(GO) test -count=1 $(PLAIN_PKGS)
	$(GO) test -race -count=1 -run 'Concurren|Seeded' ./vocoder/
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)

build:
	$(GO) build -o bin/ ./cmd/...

# Speed: GEMM on the model's shapes against OpenBLAS (when libopenblas-dev
# is installed; the yardstick needs cgo) and end-to-end synthesis of a 2 s
# mel with the small and universal configurations (random weights), at
# GOMAXPROCS 1 and 2.
BENCHCOUNT ?= 5
bench: build
	@if [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ]; then \
	  $(GO) test -tags openblas -run '^$$' -bench Gemm -cpu 1,2 -count $(BENCHCOUNT) ./internal/nn/blasbench/; \
	else \
	  echo "(no OpenBLAS: apt-get install libopenblas-dev for the yardstick)" >&2; \
	  $(GO) test -run '^$$' -bench 'Gemm$$' -cpu 1,2 -count $(BENCHCOUNT) ./internal/nn/; \
	fi | awk -f scripts/gemmtable.awk
	bin/vocode bench --config configs/small.json --threads 1,2 --count $(BENCHCOUNT)
	bin/vocode bench --config configs/universal.json --threads 1,2 --count 1

# Run every fuzz target for FUZZTIME (default 30s) each.
FUZZTIME ?= 30s
fuzz:
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > "$$log" 2>&1 || { cat "$$log"; exit 1; }; \
	  done; \
	done
