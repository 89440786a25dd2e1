# Test servers are installed outside the clone so fresh clones reuse them.
TEST_HOME ?= $(HOME)/.cache/litestream-test
export LITESTREAM_TEST_HOME := $(TEST_HOME)
export LITESTREAM_TEST_BIN := $(TEST_HOME)/bin

GO ?= go

.PHONY: test test-deps vet torture

# test installs any missing test server, then runs every test under -race.
test: test-deps vet
	$(GO) test -race -timeout 25m ./...

# torture runs the reliability tests long: 200 crash cycles, a two-minute
# fault run, a one-minute concurrency run, and the disk-full test.
TORTURE_CYCLES ?= 200
torture:
	LITESTREAM_CRASH_CYCLES=$(TORTURE_CYCLES) LITESTREAM_FAULT_SECONDS=120 LITESTREAM_CONCURRENCY_SECONDS=60 \
		$(GO) test -race -count=1 -v -timeout 90m \
		-run 'TestStore_CrashCycles|TestStore_FaultyClient|TestStore_Concurrency|TestDB_Sync_DiskFull' .

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
