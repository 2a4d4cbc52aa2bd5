#!/bin/sh
# Entry point of the berth image. Started as root, it prepares what the unprivileged user "berth"
# needs and then runs berth as that user:
#   - the state dir (BERTH_STATE_DIR) and the nginx conf dir (BERTH_NGINX_CONF_DIR) belong to berth,
#     whoever created the volumes behind them;
#   - berth joins the group that owns the Docker socket (DOCKER_HOST / BERTH_DOCKER_HOST when it is a
#     unix:// path, else /var/run/docker.sock), which is what lets it talk to Docker without root.
# Started with --user (or BERTH_RUN_AS_ROOT=1), it runs berth as it is, changing nothing.
set -eu

berth() { exec node /app/bin/berth.js "$@"; }

if [ "$(id -u)" != 0 ] || [ "${BERTH_RUN_AS_ROOT:-0}" = 1 ]; then
  berth "$@"
fi

host=${BERTH_DOCKER_HOST:-${DOCKER_HOST:-unix:///var/run/docker.sock}}
socket=
case "$host" in
  unix://*) socket=${host#unix://} ;;
  /*) socket=$host ;;
esac

for dir in "${BERTH_STATE_DIR:-}" "${BERTH_NGINX_CONF_DIR:-}"; do
  [ -n "$dir" ] || continue
  mkdir -p "$dir"
  chown berth:berth "$dir"
done
# Files an earlier root run left in the state dir (the state dir is berth's alone).
[ -z "${BERTH_STATE_DIR:-}" ] || find "$BERTH_STATE_DIR" ! -user berth -exec chown -h berth:berth {} +

groups=--clear-groups
if [ -n "$socket" ] && [ -S "$socket" ]; then
  gid=$(stat -c %g "$socket")
  groups=--groups=$gid
  if [ "$gid" = 0 ]; then
    echo "berth: the Docker socket $socket belongs to group 0 (root); berth runs as user berth in that group" >&2
  fi
fi

exec setpriv --reuid=berth --regid=berth "$groups" --inh-caps=-all -- node /app/bin/berth.js "$@"
