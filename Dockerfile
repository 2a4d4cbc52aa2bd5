# The berth controller image: `berth run`, driving the host's Docker through its socket.
#
#   docker build -t berth .                                          # base: the official node:20 image
#   scripts/base-image.sh && docker build --build-arg BASE_IMAGE=berth-base/node:20-bookworm -t berth .
#                                                                    # base made locally, no registry pull
#   docker run -d --name berth --network host \
#     -v /var/run/docker.sock:/var/run/docker.sock -v berth-state:/var/lib/berth -v nginx-conf:/etc/nginx/conf.d \
#     -e BERTH_REPO=https://git.example.com/ops/deploy.git -e BERTH_ENV=production -e BERTH_NGINX_CONTAINER=nginx berth
#
# deploy/compose.yaml runs it next to nginx; README.md "Run berth as a container" explains the choices.
# berth starts as root only to take ownership of its volumes and join the Docker socket's group, then
# runs as the user "berth" (deploy/image/entrypoint.sh). nginx runs in its own container
# (--nginx-container: berth tests and reloads it through the Docker API) or berth runs on the host.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
COPY schemas ./schemas
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${BASE_IMAGE}
# tini: signals reach berth, and children (git, nginx -t when run locally) are reaped.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini ca-certificates \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 berth \
  && useradd --system --uid 10001 --gid berth --home-dir /var/lib/berth --no-create-home --shell /usr/sbin/nologin berth \
  && mkdir -p /var/lib/berth /etc/nginx/conf.d \
  && chown berth:berth /var/lib/berth /etc/nginx/conf.d
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY schemas ./schemas
COPY package.json ./
COPY deploy/image/entrypoint.sh deploy/image/healthcheck.mjs /usr/local/lib/berth/
ENV NODE_ENV=production \
    BERTH_STATE_DIR=/var/lib/berth \
    BERTH_NGINX_CONF_DIR=/etc/nginx/conf.d \
    BERTH_LISTEN=127.0.0.1:7654
VOLUME /var/lib/berth
EXPOSE 7654
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/usr/local/lib/berth/healthcheck.mjs"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/lib/berth/entrypoint.sh"]
CMD ["run"]
