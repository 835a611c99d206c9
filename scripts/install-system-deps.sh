#!/usr/bin/env bash
# Install the Debian packages authnet needs, when missing. Idempotent.
# Fails loudly (non-zero, with the reason) when it cannot install them.
#
#   install-system-deps.sh build   what building and running the Python dependencies need
#                                  (pyscard compiles against PC/SC; pysodium loads libsodium)
#   install-system-deps.sh test    what the test suite runs against: a real PC/SC
#                                  stack with a virtual reader, SoftHSM2, Chromium
set -euo pipefail

case "${1:-test}" in
  build) PACKAGES=(gcc libpcsclite-dev swig libsodium23) ;;
  test) PACKAGES=(gcc libpcsclite-dev swig libsodium23 pcscd vsmartcard-vpcd opensc yubico-piv-tool softhsm2 chromium fonts-dejavu-core gnome-keyring dbus-daemon) ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "Installing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo -n)
else
  echo "error: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  echo "apt-get install failed; refreshing package lists and retrying" >&2
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" | grep -q "install ok installed" || {
    echo "error: package $p is still not installed" >&2
    exit 1
  }
done
