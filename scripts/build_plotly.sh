#!/usr/bin/env bash
# Rebuild static/vendor/plotly.min.js: plotly.js's core (scatter included) with the bar and
# heatmap traces, the only traces static/js draws, bundled and minified by esbuild.
#
#   scripts/build_plotly.sh            # from the repository root; needs node and npm
#
# Versions are pinned by scripts/plotly/package.json and its lock file (npm ci installs exactly
# them, without install scripts) in a temporary folder, so nothing is left in the repository but
# the built file. When adding a trace type to static/js, register it in scripts/plotly/entry.js
# and run this again.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/static/vendor/plotly.min.js"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$root/scripts/plotly/package.json" "$root/scripts/plotly/package-lock.json" \
   "$root/scripts/plotly/entry.js" "$work/"
cd "$work"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

version="$(node -p "require('plotly.js/package.json').version")"
banner="/**
* plotly.js (scatter, bar, heatmap - minified) v$version
* Copyright 2012-2026, Plotly, Inc.
* All rights reserved.
* Licensed under the MIT license
* Built by scripts/build_plotly.sh from plotly.js/lib/core, bar and heatmap
*/"

# As plotly.js builds its own bundles (its esbuild-config.js): an IIFE exposing window.Plotly,
# `global` as window, no AMD. CSS files (map styles, required by the registry only for map
# traces) are left out; the licences of bundled packages are kept at the end.
npx --no-install esbuild entry.js \
  --bundle --minify --format=iife --global-name=Plotly \
  --define:global=window --define:define.amd=false --target=es2016 \
  --loader:.css=empty --legal-comments=eof --log-level=warning \
  --banner:js="$banner" \
  --outfile="$work/plotly.min.js"

cp "$work/plotly.min.js" "$out"
cp "$work/node_modules/plotly.js/LICENSE" "$root/static/vendor/plotly.LICENSE.txt"
echo "wrote $out ($(wc -c <"$out") bytes), plotly.js $version"
