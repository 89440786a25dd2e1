#!/usr/bin/env bash
# install-fake-gcs-server.sh installs the fake-gcs-server binary used by the gs
# backend's integration tests into
# ${LITESTREAM_TEST_BIN:-$HOME/.cache/litestream-test/bin}.
# It is idempotent: it exits 0 at once when the binary is already installed.
set -euo pipefail

FAKE_GCS_SERVER_VERSION="${FAKE_GCS_SERVER_VERSION:-v1.56.1}"
BIN_DIR="${LITESTREAM_TEST_BIN:-$HOME/.cache/litestream-test/bin}"

if [ -x "$BIN_DIR/fake-gcs-server" ]; then
	echo "fake-gcs-server already installed at $BIN_DIR/fake-gcs-server"
	exit 0
fi

mkdir -p "$BIN_DIR"
echo "installing github.com/fsouza/fake-gcs-server@$FAKE_GCS_SERVER_VERSION into $BIN_DIR"
start=$(date +%s)
cd "$(mktemp -d)"
# No cgo: a static binary, and no gcc runs in the long cold build.
CGO_ENABLED=0 GOBIN="$BIN_DIR" GOFLAGS=-mod=mod go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_SERVER_VERSION"
echo "fake-gcs-server installed in $(( $(date +%s) - start ))s"
