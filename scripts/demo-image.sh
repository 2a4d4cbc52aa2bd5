#!/usr/bin/env bash
# Builds the demo/test images FROM scratch with Debian's busybox-static (no registry needed):
#   berth-demo/httpd:1.0, :1.1  busybox with httpd serving /www (GET /health → "ok")
# Usage: scripts/demo-image.sh   (uses DOCKER_HOST)
set -euo pipefail
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "busybox-static not found at $busybox (apt-get install busybox-static)" >&2; exit 1; }
for version in 1.0 1.1; do
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/www" "$root/tmp"
  chmod 1777 "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  for applet in sh httpd sleep test touch echo true false cat mkdir wget kill ls; do ln -s busybox "$root/bin/$applet"; done
  echo ok > "$root/www/health"
  echo "$version" > "$root/www/version"
  tar -C "$root" -c . | docker import \
    -c 'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]' \
    -c 'ENV PATH=/bin' \
    -c 'EXPOSE 8080' \
    - "berth-demo/httpd:$version" >/dev/null
  rm -rf "$root"
done
echo "built berth-demo/httpd:1.0 berth-demo/httpd:1.1"
