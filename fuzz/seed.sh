#!/usr/bin/env bash
# Seeds the fuzz corpus with every fixture archive, so mutations start from real archives.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/pt2_import
for f in ../tests/fixtures/models/*/*.pt2 ../examples/*/models/*.pt2; do
  cp "$f" "corpus/pt2_import/$(echo "$f" | tr '/.' '__')"
done
