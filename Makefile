# Test servers are installed outside the clone so fresh clones reuse them.
TEST_HOME ?= $(HOME)/.cache/litestream-test
export LITESTREAM_TEST_HOME := $(TEST_HOME)
export LITESTREAM_TEST_BIN := $(TEST_HOME)/bin

GO ?= go

.PHONY: test test-deps vet cross fuzz-smoke torture minio interleave

# test installs any missing test server, then runs every test under -race
# (each fuzz target's seed corpus included) and more interleaving seeds.
# -count=1: a result cached by an earlier run on the same machine must not
# stand in for running the test.
test: test-deps vet
	$(GO) test -race -count=1 -timeout 25m ./...
	$(MAKE) interleave

# interleave runs more seeds of the interleaving test than the -race run
# above (seeds 1-20), without the race detector: the test drives the library
# from one goroutine, and other tests look for data races.
INTERLEAVE_SEEDS ?= 200
interleave:
	LITESTREAM_INTERLEAVE_FIRST=21 LITESTREAM_INTERLEAVE_SEEDS=$(INTERLEAVE_SEEDS) \
		$(GO) test -count=1 -timeout 30m -run '^TestDB_Interleavings$$' .

# fuzz-smoke runs each fuzz target for a fixed number of inputs beyond its
# seed corpus (testdata/fuzz), about 8 s each on 2 cores. Counts, not a
# duration: go1.26's fuzz coordinator can fail a duration-bounded run with
# "context deadline exceeded" when the time runs out mid-input (Go issue
# 75804, fixed in 1.27). Set FUZZTIME=10m for a real run of every target.
# Minimizing is kept short: new inputs are WALs and LTX files of kilobytes.
FUZZ_TARGETS := FuzzWALReader:4000x FuzzCalcRestorePlan:5000x FuzzRestoreLTX:100x FuzzFollowLTX:200x FuzzLTXEncoder:1500x
fuzz-smoke:
	@for ft in $(FUZZ_TARGETS); do \
		f=$${ft%%:*}; n=$${FUZZTIME:-$${ft#*:}}; \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $$n -fuzzminimizetime 2s . || exit 1; \
	done

# torture runs the reliability tests long: 200 crash cycles, a two-minute
# fault run, a one-minute concurrency run, a minute of restores racing
# compaction and retention (make test: 5 s), a one-minute run of VFS readers
# against a replicating writer (make test: 10 s), the disk-full test, and
# 1000 seeds of the interleaving test (make test runs 220). A failing seed
# replays with LITESTREAM_INTERLEAVE_SEED=<seed>.
TORTURE_CYCLES ?= 200
TORTURE_SEEDS ?= 1000
torture:
	LITESTREAM_CRASH_CYCLES=$(TORTURE_CYCLES) LITESTREAM_FAULT_SECONDS=120 LITESTREAM_CONCURRENCY_SECONDS=60 \
		LITESTREAM_INTERLEAVE_SEEDS=$(TORTURE_SEEDS) LITESTREAM_VFS_SECONDS=60 LITESTREAM_RESTORE_RACE_SECONDS=60 \
		$(GO) test -race -count=1 -v -timeout 170m \
		-run 'TestStore_CrashCycles|TestStore_FaultyClient|TestStore_Concurrency|TestStore_RestoresWhileMaintaining|TestVFS_ConcurrentReaders|TestDB_Sync_DiskFull|TestDB_Interleavings' .

# test-deps runs the idempotent installers in scripts/ side by side.
test-deps:
	@mkdir -p "$(LITESTREAM_TEST_BIN)"
	@bash scripts/test-deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# cross checks that the library builds for macOS and Windows (tests and the
# bench are Linux tools). Cold, it compiles every dependency twice more
# (about 10 minutes on 2 cores), so it is not part of test.
LIB_PKGS := . ./internal ./file ./s3 ./gs ./abs ./oss ./sftp ./nats ./webdav
cross:
	GOOS=darwin $(GO) build $(LIB_PKGS)
	GOOS=windows $(GO) build $(LIB_PKGS)

# minio runs a MinIO server for examples/s3 on $(MINIO_ADDR) with the
# credentials minioadmin/minioadmin and the bucket litestream-example,
# keeping its data in $(TEST_HOME)/minio-data, until Ctrl+C.
MINIO_ADDR ?= 127.0.0.1:9000
minio:
	@bash scripts/install-minio.sh
	$(GO) run ./internal/cmd/devminio -addr $(MINIO_ADDR) -dir "$(TEST_HOME)/minio-data" -bucket litestream-example

.PHONY: bench bench-quick

# bench measures the performance budget at full sizes (256MB, 1GB, 4GB);
# it needs about 30GB of free disk under $TMPDIR.
bench:
	$(GO) run ./cmd/litestream-bench

# bench-quick runs the same figures with small databases and short windows.
bench-quick:
	$(GO) run ./cmd/litestream-bench -quick
