# The berth controller image: runs `berth run`, driving the host's Docker through its socket.
#   docker build -t berth .
#   docker run -d -v /var/run/docker.sock:/var/run/docker.sock -v /etc/nginx/conf.d:/etc/nginx/conf.d \
#     -v berth-state:/var/lib/berth berth run --env production --repo https://git.example.com/ops/deploy.git
# nginx usually runs on the host or in its own container: point --nginx-test-cmd / --nginx-reload-cmd
# at it (e.g. "docker exec nginx nginx -s reload").
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts
COPY src ./src
COPY schemas ./schemas
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends docker.io nginx-light git ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY schemas ./schemas
COPY package.json ./
ENV NODE_ENV=production BERTH_STATE_DIR=/var/lib/berth
VOLUME /var/lib/berth
ENTRYPOINT ["node", "/app/bin/berth.js"]
CMD ["run"]
