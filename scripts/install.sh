#!/bin/sh
# Install Phoenix's runtime into the environment of the given Python: requirements.txt, then
# the package itself, non-editable. The Docker image and `make smoke` both install this way,
# so the smoke test sees exactly what users get (no dev tools, no checkout on sys.path).
# Between the two, the gRPC stubs are generated from proto/ (with grpcio-tools' protoc) into
# core/api/grpc_gen, so the package built from the checkout ships them.
#   scripts/install.sh PYTHON
set -eu
PY="${1:?usage: scripts/install.sh PYTHON}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
"$PY" -m pip install --quiet --disable-pip-version-check -r "$SRC/requirements.txt"
"$PY" "$SRC/core/api/grpc_build.py"
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps "$SRC"
