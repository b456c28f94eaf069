# syntax=docker/dockerfile:1
#
# tilegraph's image: `docker build -t tilegraph:0.1.0 .`
#
# Two stages. `build` installs every dependency (compiling better-sqlite3 when no prebuilt
# binary fits), compiles the WebAssembly kernels, the inflate addon and the TypeScript, then prunes the dev dependencies in place, so that the
# native modules built here are the ones that ship. `runtime` holds only what
# `tilegraph serve` and `tilegraph seed` need: the compiled src/ and workers/, package.json and
# its lockfile, the pruned node_modules, and the shipped layers as the default LAYERS_DIR.
# test/deploy.test.ts builds the same file set without Docker and serves a tile from it.

FROM node:20-bookworm-slim AS build
# libdeflate-dev: the inflate addon links Debian's libdeflate statically, so the runtime needs nothing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libdeflate-dev \
 && rm -rf /var/lib/apt/lists/*
# node-gyp takes Node's headers from the image instead of downloading them.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json asconfig.json ./
COPY assembly ./assembly
COPY native/binding.gyp native/inflate.c ./native/
COPY src ./src
COPY workers ./workers
# The WebAssembly kernels, the inflate addon and the TypeScript, as package.json's build.
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
# HOST: listen on every interface of the container, not only its loopback.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    LAYERS_DIR=/layers
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/workers ./dist/workers
COPY --from=build /app/native/build/Release/inflate.node ./native/build/Release/inflate.node
# The shipped layers, owned by root and so read-only to the server; mount your own over /layers.
COPY layers /layers
# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 8080
# Slim images have no curl: node asks /healthz itself.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: signals reach node itself. SIGTERM drains and exits, SIGHUP reloads the layers.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["serve"]
