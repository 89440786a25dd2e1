#!/usr/bin/env bash
# install-azurite.sh installs Azurite, the Azure Storage emulator used by the
# abs backend's tests, from npm into
# ${LITESTREAM_TEST_HOME:-$HOME/.cache/litestream-test}/azurite and links its
# azurite-blob entry point into ${LITESTREAM_TEST_BIN:-$HOME/.cache/litestream-test/bin}.
# It is idempotent: it exits 0 at once when azurite-blob is already installed.
# Azurite is MIT-licensed and runs as a separate test process.
set -euo pipefail

AZURITE_VERSION="${AZURITE_VERSION:-3.37.0}"
TEST_HOME="${LITESTREAM_TEST_HOME:-$HOME/.cache/litestream-test}"
BIN_DIR="${LITESTREAM_TEST_BIN:-$TEST_HOME/bin}"
PREFIX="$TEST_HOME/azurite-$AZURITE_VERSION"

if [ -x "$BIN_DIR/azurite-blob" ] && [ -x "$PREFIX/node_modules/.bin/azurite-blob" ]; then
	echo "azurite $AZURITE_VERSION already installed at $BIN_DIR/azurite-blob"
	exit 0
fi

command -v npm >/dev/null || { echo "npm is required to install azurite" >&2; exit 1; }

mkdir -p "$PREFIX" "$BIN_DIR"
echo "installing azurite@$AZURITE_VERSION into $PREFIX"
start=$(date +%s)
cd "$PREFIX"
[ -f package.json ] || npm init -y >/dev/null
# engines asks for node >= 22; it runs on node 20, npm only warns.
npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
ln -sf "$PREFIX/node_modules/.bin/azurite-blob" "$BIN_DIR/azurite-blob"
echo "azurite installed in $(( $(date +%s) - start ))s"
