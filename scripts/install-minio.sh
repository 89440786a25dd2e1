#!/usr/bin/env bash
# install-minio.sh installs the MinIO server binary used by the s3 backend's
# integration tests into ${LITESTREAM_TEST_BIN:-$HOME/.cache/litestream-test/bin}.
# It is idempotent: it exits 0 at once when the binary is already installed.
# MinIO is AGPL-3.0; it is only run as a separate test process, never linked.
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
BIN_DIR="${LITESTREAM_TEST_BIN:-$HOME/.cache/litestream-test/bin}"

if [ -x "$BIN_DIR/minio" ]; then
	echo "minio already installed at $BIN_DIR/minio"
	exit 0
fi

mkdir -p "$BIN_DIR"
echo "installing github.com/minio/minio@$MINIO_VERSION into $BIN_DIR (takes several minutes)"
start=$(date +%s)
# Build outside any module so the project's go.mod is not consulted.
cd "$(mktemp -d)"
# No cgo: a static binary, and no gcc runs in the long cold build.
CGO_ENABLED=0 GOBIN="$BIN_DIR" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
echo "minio installed in $(( $(date +%s) - start ))s"
