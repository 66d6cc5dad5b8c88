#!/usr/bin/env bash
# Installs what building touchline needs on a fresh Debian (12 or later) or
# Ubuntu machine: the C/C++ toolchain and libraries RocksDB and librdkafka are
# compiled against (apt), and a Rust toolchain (rustup) when `cargo` is missing
# or older than the workspace's rust-version (Debian 12's own rustc is 1.63).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# build-essential: gcc, g++, make (RocksDB's C++, librdkafka's configure + make);
# libclang-dev: bindgen for RocksDB's bindings; libssl-dev, zlib1g-dev,
# pkg-config: librdkafka with TLS and compression; curl, ca-certificates: rustup.
packages=(build-essential libclang-dev libssl-dev zlib1g-dev pkg-config curl ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The oldest Rust the workspace accepts (Cargo.toml, rust-version).
need="$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -1)"
have=""
if command -v cargo >/dev/null 2>&1; then
  have="$(cargo --version | awk '{print $2}')"
fi
older() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" != "$2" ]; }   # $1 < $2
if [ -z "$have" ] || older "$have" "$need"; then
  echo "setup: cargo ${have:-missing}, need >= $need: installing the stable toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  echo "setup: run 'source \$HOME/.cargo/env' (or open a new shell) to put cargo on PATH"
else
  echo "setup: cargo $have (>= $need) found"
fi
echo "setup: done. Next: cargo run --release -p touchline-node -- demo --serve"
