# Test servers are installed outside the clone so fresh clones reuse them.
TEST_HOME ?= $(HOME)/.cache/litestream-test
export LITESTREAM_TEST_HOME := $(TEST_HOME)
export LITESTREAM_TEST_BIN := $(TEST_HOME)/bin

GO ?= go

.PHONY: test test-deps vet

# test installs any missing test server, then runs every test under -race.
test: test-deps vet
	$(GO) test -race -timeout 25m ./...

# test-deps runs each idempotent installer in scripts/.
test-deps:
	@mkdir -p "$(LITESTREAM_TEST_BIN)"
	@for s in scripts/install-*.sh; do \
		[ -f "$$s" ] || continue; \
		echo "== $$s"; bash "$$s" || exit 1; \
	done

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

.PHONY: bench bench-quick

# bench measures the performance budget at full sizes (256MB, 1GB, 4GB);
# it needs about 30GB of free disk under $TMPDIR.
bench:
	$(GO) run ./cmd/litestream-bench

# bench-quick runs the same figures with small databases and short windows.
bench-quick:
	$(GO) run ./cmd/litestream-bench -quick
