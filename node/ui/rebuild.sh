#!/usr/bin/env bash
# Rebuilds the report page's committed build, node/ui/dist/ (embedded in the
# binary by node/src/http/ui.rs), from node/ui/src. The npm packages pinned in
# package-lock.json are installed once into a cache outside the clone
# ($TOUCHLINE_UI_BUILD, default $HOME/.cache/touchline-ui-build).
#   node/ui/rebuild.sh          rebuild dist/ (commit it with the source change)
#   node/ui/rebuild.sh --check  build into the cache and fail if dist/ differs (.ci/run)
set -euo pipefail
ui="$(cd "$(dirname "$0")" && pwd)"
cache="${TOUCHLINE_UI_BUILD:-$HOME/.cache/touchline-ui-build}"
command -v npm >/dev/null 2>&1 || { echo "rebuild.sh: npm (Node.js >= 20.19) is needed to build node/ui" >&2; exit 1; }
if ! cmp -s "$ui/package-lock.json" "$cache/package-lock.json" || ! cmp -s "$ui/package.json" "$cache/package.json" \
   || [ ! -x "$cache/node_modules/.bin/vite" ]; then
  rm -rf "$cache"
  mkdir -p "$cache"
  cp "$ui/package.json" "$ui/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --silent)
fi
work="$cache/work"
rm -rf "$work"
mkdir -p "$work"
cp -r "$ui/index.html" "$ui/vite.config.ts" "$ui/tsconfig.json" "$ui/package.json" "$ui/src" "$work/"
ln -s "$cache/node_modules" "$work/node_modules"
(cd "$work" && ./node_modules/.bin/tsc --noEmit && ./node_modules/.bin/vite build --logLevel warn)
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$work/dist" "$ui/dist" >/dev/null; then
    diff -rq "$work/dist" "$ui/dist" >&2 || true
    echo "node/ui/dist is not the build of node/ui/src: run node/ui/rebuild.sh and commit node/ui/dist" >&2
    exit 1
  fi
  echo "node/ui/dist matches its source"
else
  rm -rf "$ui/dist"
  cp -r "$work/dist" "$ui/dist"
  echo "rebuilt node/ui/dist"
fi
