#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (an OpenAI-compatible server that batches several sequences)
# from the llama.cpp sources vendored in the llama-cpp-python sdist the project pins, so the server
# and the in-process model run the same llama.cpp. Idempotent: a second run with the binary in
# place does nothing. Output: build/llama-server/llama-server (git-ignored).
#
#   scripts/build-llama-server.sh            # or: make llama-server
#   JOBS=4 scripts/build-llama-server.sh     # more compile jobs (default 2)
#
# Needs cmake, a C++17 compiler and pip (the sdist comes from PyPI once, then from pip's cache).
# The build is portable (AVX2/FMA, no -march=native), links statically (one self-contained file),
# embeds no web UI and downloads nothing at build time.
# The built binary is also kept in the user cache (RAG_CACHE_DIR, default ~/.cache/policy-rag, under
# llama-server/<version>/), so a fresh clone on the same machine copies it instead of rebuilding.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build/llama-server"
BIN="$OUT/llama-server"
VERSION="$(sed -n 's/^llama[-_]cpp[-_]python==//p' "$ROOT/requirements/constraints.txt")"
PIP="${PIP:-$ROOT/.venv/bin/pip}"
[ -x "$PIP" ] || PIP="pip"
JOBS="${JOBS:-2}"
STAMP="$OUT/.version"
CACHE_BIN="${RAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/policy-rag}/llama-server/$VERSION/llama-server"

if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  echo "llama-server $VERSION already built: $BIN"
  exit 0
fi
if [ -x "$CACHE_BIN" ] && "$CACHE_BIN" --version >/dev/null 2>&1; then
  mkdir -p "$OUT"
  cp "$CACHE_BIN" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  echo "$VERSION" > "$STAMP"
  echo "llama-server $VERSION copied from the cache: $CACHE_BIN"
  exit 0
fi

mkdir -p "$OUT/sdist"
SDIST="$OUT/sdist/llama_cpp_python-$VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
  "$PIP" download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$OUT/sdist"
fi
SRC="$OUT/src/llama_cpp_python-$VERSION/vendor/llama.cpp"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  rm -rf "$OUT/src" && mkdir -p "$OUT/src"
  tar xzf "$SDIST" -C "$OUT/src"
fi

cmake -S "$SRC" -B "$OUT/cmake" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  > "$OUT/cmake.log"
cmake --build "$OUT/cmake" --config Release --target llama-server -j "$JOBS"
cp "$OUT/cmake/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
echo "$VERSION" > "$STAMP"
mkdir -p "$(dirname "$CACHE_BIN")" && cp "$BIN" "$CACHE_BIN.tmp" && mv "$CACHE_BIN.tmp" "$CACHE_BIN" || true
"$BIN" --version 2>&1 | head -2
echo "built $BIN"
