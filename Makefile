# glowvoc build and test entry points. `make test` is what CI runs.
GO ?= go
# Packages cheap enough to run under the race detector.
RACE_PKGS = ./audio/... ./melspec/... ./internal/...
# Model conformance tests: heavy float work, run without -race.
PLAIN_PKGS = ./vocoder/... ./cmd/...

.PHONY: test vet build bench fuzz

test: vet
	$(GO) test -race -count=1 $(RACE_PKGS)
	$(GO) test -count=1 $(PLAIN_PKGS)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)

build:
	$(GO) build -o bin/ ./cmd/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/nn/ ./vocoder/

# Run each fuzz target for a while (default 30s each).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done
