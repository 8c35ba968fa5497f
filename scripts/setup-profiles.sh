#!/usr/bin/env bash
# The seccomp profiles Debian's packages ship, for the tests of `ringfence import-seccomp`:
#   golang-github-containers-common  usr/share/containers/seccomp.json   (Podman, Buildah, CRI-O)
#   golang-github-docker-docker-dev  usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json
# Fetched with apt-get from Debian 12 (bookworm) on this machine's own Debian mirror, through a private apt
# configuration (the same packages whatever release the machine runs; the system's apt state is not changed), and
# unpacked with dpkg-deb under ${RINGFENCE_CACHE:-~/.cache/ringfence}/seccomp-profiles/<package>/. Also makes sure
# libseccomp is installed (the tests compare with the filters it builds). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
CACHE="${RINGFENCE_CACHE:-$HOME/.cache/ringfence}"
DEST="$CACHE/seccomp-profiles"
SUITE=bookworm
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
declare -A FILES=(
  [golang-github-containers-common]=usr/share/containers/seccomp.json
  [golang-github-docker-docker-dev]=usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json
)

if ! dpkg-query -W -f='${Status}' libseccomp2 2>/dev/null | grep -q 'install ok installed'; then
  SUDO=(); if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends libseccomp2
fi

missing=()
for pkg in "${!FILES[@]}"; do
  [ -f "$DEST/$pkg/${FILES[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-profiles: the packaged seccomp profiles are in $DEST"
  exit 0
fi

mirror=$("$PY" -c 'from ringfence.vm.apt import find_mirror; print(find_mirror())')
root="$CACHE/apt-$SUITE"
mkdir -p "$root/lists/partial" "$root/cache/archives/partial"
echo "deb [signed-by=$KEYRING] $mirror $SUITE main" > "$root/sources.list"
opts=(-o "Dir::Etc::SourceList=$root/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$root/lists" -o "Dir::Cache=$root/cache" -o APT::Architecture=amd64
      -o APT::Sandbox::User=root)
echo "setup-profiles: fetching ${missing[*]} from $SUITE"
apt-get -q "${opts[@]}" -o APT::Update::Error-Mode=any update >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for pkg in "${missing[@]}"; do
  (cd "$work" && apt-get -q "${opts[@]}" download "$pkg" >/dev/null)
  deb=$(ls "$work/${pkg}"_*.deb)
  rm -rf "$DEST/$pkg.new" && mkdir -p "$DEST/$pkg.new"
  dpkg-deb -x "$deb" "$DEST/$pkg.new"
  dpkg-deb -f "$deb" Version > "$DEST/$pkg.new/VERSION"
  [ -f "$DEST/$pkg.new/${FILES[$pkg]}" ] || { echo "setup-profiles: $pkg has no ${FILES[$pkg]}" >&2; exit 1; }
  rm -rf "${DEST:?}/$pkg" && mv "$DEST/$pkg.new" "$DEST/$pkg"
  echo "setup-profiles: $pkg $(cat "$DEST/$pkg/VERSION")"
done
