#!/usr/bin/env bash
# Builds the appc ACE validator (github.com/appc/spec/ace, pinned by go.mod and go.sum beside this
# script) and its two ACIs, OUTDIR/ace-validator-main.aci and OUTDIR/ace-validator-sidekick.aci,
# laid out as the spec's own scripts/build-ace-validator-acis lays them out.
# Usage: test/ace/build.sh OUTDIR. Cheap when the ACIs are newer than this module's files.
#
# Go's caches stay where Go puts them by default ($HOME/.cache/go-build, $HOME/go/pkg/mod), as the
# Rust tests' target dir stays in $HOME: fixtures/build.sh empties fixtures/build/ whenever a
# fixture changes, and caches kept there would cost a download and a cold build each time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ $# -ne 1 || -z $1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
acis=("$out/ace-validator-main.aci" "$out/ace-validator-sidekick.aci")

fresh() {
  local aci input
  for aci in "${acis[@]}"; do
    [[ -f $aci ]] || return 1
    for input in "$here"/build.sh "$here"/go.mod "$here"/go.sum "$here"/tools.go; do
      [[ $aci -nt $input ]] || return 1
    done
  done
}
if fresh; then
  echo "ace: ACIs in $out"
  exit 0
fi

go=${GO:-go}
if ! command -v "$go" >/dev/null; then
  echo "ace: '$go' not found: install Go (Debian's golang-go, listed in debian-packages.txt) or set GO" >&2
  exit 1
fi
# The committed go.sum is the check on what is built, so nothing may rewrite it; no toolchain is
# fetched, and a workspace above this directory must not change what the module resolves to.
export GOFLAGS=-mod=readonly GOTOOLCHAIN=local GOWORK=off GO111MODULE=on
# Without HOME or XDG_CACHE_HOME Go has nowhere for its caches and refuses to build.
if [[ -z ${HOME:-} ]]; then
  export GOCACHE=${GOCACHE:-$out/.go/cache} GOPATH=${GOPATH:-$out/.go/path} GOFLAGS="$GOFLAGS -modcacherw"
fi

work="$out/.build"
rm -rf "$work"
mkdir -p "$work"
log="$work/go.log"
gorun() {
  if ! (cd "$here" && "$go" "$@") >>"$log" 2>&1; then
    cat "$log" >&2
    echo "ace: '$go $*' failed in $here" >&2
    exit 1
  fi
}

# The rootfs holds nothing but this binary, so it must not need a libc or a dynamic loader.
CGO_ENABLED=0 GOOS=linux gorun build -trimpath -buildvcs=false -ldflags='-s -w' \
  -o "$work/ace-validator" github.com/appc/spec/ace
# The manifest templates come from the module the binary was built from.
spec=$(cd "$here" && "$go" list -m -f '{{.Dir}}' github.com/appc/spec 2>>"$log") || spec=
if [[ ! -f $spec/ace/image_manifest_main.json.in ]]; then
  cat "$log" >&2
  echo "ace: no manifest templates in github.com/appc/spec's module dir '$spec'" >&2
  exit 1
fi
goarch=$("$go" env GOARCH)
# appc names architectures as uname does, where Go's names differ.
case $goarch in
  386) arch=i386 ;;
  arm64) arch=aarch64 ;;
  arm) arch=armv7l ;;
  *) arch=$goarch ;;
esac

for typ in main sidekick; do
  layout="$work/$typ"
  mkdir -p "$layout/rootfs/opt/acvalidator"
  install -m 0755 "$work/ace-validator" "$layout/rootfs/ace-validator"
  sed -e "s/@ACI_OS@/linux/" -e "s/@ACI_ARCH@/$arch/" "$spec/ace/image_manifest_$typ.json.in" >"$layout/manifest"
  chmod 0644 "$layout/manifest"
  chmod -R u=rwX,go=rX "$layout"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
    -C "$layout" -cf "$work/$typ.aci" manifest rootfs
  mv "$work/$typ.aci" "$out/ace-validator-$typ.aci"
done
rm -rf "$work"
echo "ace: ACIs in $out"
