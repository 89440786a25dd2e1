#!/usr/bin/env bash
# install-debian-servers.sh installs the Debian packages whose servers the
# sftp (openssh-server), nats (nats-server) and webdav (rclone) backends'
# tests start. It is idempotent: it exits 0 at once when all are installed,
# and runs `apt-get update` only when something is missing.
set -euo pipefail

PACKAGES=(openssh-server nats-server rclone)

missing=()
for pkg in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$pkg")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "debian test servers already installed: ${PACKAGES[*]}"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

echo "installing ${missing[*]}"
start=$(date +%s)
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "installed ${missing[*]} in $(( $(date +%s) - start ))s"
