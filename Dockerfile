# clover-cd image: the CLI, `serve` and `stage`, for building where base images can be pulled. Image names
# are $CLOVER_CD_REGISTRY/<image>:<package version>; CLOVER_CD_REGISTRY defaults to ghcr.io/clover-cd, the
# registry deploy/ and the generated manifests name (set your own, and pin it in deploy/'s `images:`):
#   docker build -t ghcr.io/clover-cd/clover-cd:0.1.0 .                               # builtin load engine
#   docker build -t ghcr.io/clover-cd/clover-cd-jmeter:0.1.0 --target jmeter .        # plus JMeter and a JRE
#   docker build --build-arg CLOVER_CD_REGISTRY=registry.example.com/team -t registry.example.com/team/clover-cd:0.1.0 .
# scripts/build-images.sh builds the same layout from Debian packages where they cannot (README "Images").
# Layout: /app/{package.json,bin,dist,node_modules (production only),examples,deploy/sdc}; node and clover-cd
# (a link to /app/bin/clover-cd.js, whose shebang finds node through /usr/bin/env) in /usr/local/bin;
# entrypoint ["clover-cd"], so whatever runs in the image is `["clover-cd", ...]` in exec form; uid 10001;
# writes only to /tmp and /var/lib/clover-cd, so the root filesystem can be read-only.
ARG CLOVER_CD_REGISTRY=ghcr.io/clover-cd
ARG CLOVER_CD_VERSION=0.1.0

FROM docker.io/library/node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY src src
RUN npm run build
# The application as it runs: production dependencies only, no type declarations or source maps.
RUN mkdir -p /app/deploy \
 && cp -a package.json package-lock.json dist /app/ \
 && cd /app && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm package-lock.json \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete
COPY bin /app/bin
COPY examples /app/examples
COPY deploy/sdc /app/deploy/sdc

FROM docker.io/library/node:20-bookworm-slim AS runtime
ARG CLOVER_CD_REGISTRY
ARG CLOVER_CD_VERSION
RUN groupadd --gid 10001 clover && useradd --uid 10001 --gid 10001 --home-dir /var/lib/clover-cd --shell /usr/sbin/nologin clover \
 && mkdir -p /var/lib/clover-cd && chown 10001:10001 /var/lib/clover-cd \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx /usr/local/lib/node_modules/corepack /usr/local/bin/corepack /opt/yarn* /usr/local/bin/yarn* \
 && ln -s /app/bin/clover-cd.js /usr/local/bin/clover-cd
COPY --from=build /app /app
ENV NODE_ENV=production CLOVER_CD_STATE_DIR=/var/lib/clover-cd HOME=/tmp XDG_CACHE_HOME=/tmp/cache PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.title=clover-cd org.opencontainers.image.version=${CLOVER_CD_VERSION} org.opencontainers.image.ref.name=${CLOVER_CD_REGISTRY}/clover-cd:${CLOVER_CD_VERSION}
USER 10001:10001
WORKDIR /var/lib/clover-cd
EXPOSE 8080
ENTRYPOINT ["clover-cd"]

# JMeter: Debian's 2.13 uses the system XStream, whose allow-list blocks JMeter's classes; clover-cd starts it
# through its launcher (src/jmeter/launcher), compiled here so the image needs only a JRE at run time.
FROM runtime AS jmeter
ARG CLOVER_CD_REGISTRY
ARG CLOVER_CD_VERSION
USER 0
# jmeter-http (the HTTP samplers) is only a Recommends of jmeter: without it no plan loads.
RUN apt-get update && apt-get install -y --no-install-recommends jmeter jmeter-http default-jdk-headless \
 && mkdir -p /app/jmeter-launcher \
 && javac -nowarn -cp /usr/share/jmeter/bin/ApacheJMeter.jar -d /app/jmeter-launcher /app/dist/jmeter/launcher/JMeterXStreamFix.java \
 && touch /app/jmeter-launcher/*.class \
 && rm -rf /var/lib/apt/lists/*
ENV CLOVER_CD_JMETER_LAUNCHER_DIR=/app/jmeter-launcher
LABEL org.opencontainers.image.title=clover-cd-jmeter org.opencontainers.image.ref.name=${CLOVER_CD_REGISTRY}/clover-cd-jmeter:${CLOVER_CD_VERSION}
USER 10001:10001

# The default target is the image without JMeter.
FROM runtime
