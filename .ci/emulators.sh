#!/usr/bin/env bash
# The store emulators the tests start (tests/servers/emulators.py): fake-gcs-server, built from its Go
# module, and Azurite's Blob service, from npm. Cached outside the repo, keyed by version; a warm run
# only checks that both are there. Keep the versions in step with tests/servers/emulators.py.
set -euo pipefail
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0
root="${DSCACHE_EMULATORS_DIR:-$HOME/.cache/dscache-emulators}"
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
mkdir -p "$root"

gcs="$root/fake-gcs-server-$FAKE_GCS_VERSION"
if [ ! -x "$gcs/fake-gcs-server" ]; then
  echo "building fake-gcs-server $FAKE_GCS_VERSION"
  rm -rf "$gcs.tmp"
  GOBIN="$gcs.tmp" go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
  rm -rf "$gcs"
  mv "$gcs.tmp" "$gcs"
fi

azurite="$root/azurite-$AZURITE_VERSION"
if [ ! -x "$azurite/node_modules/.bin/azurite-blob" ]; then
  echo "installing azurite $AZURITE_VERSION"
  rm -rf "$azurite.tmp"
  npm install --prefix "$azurite.tmp" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
  rm -rf "$azurite"
  mv "$azurite.tmp" "$azurite"
fi
