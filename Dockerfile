# clover-cd image: the CLI, `serve` and `stage`, for building where base images can be pulled:
#   docker build -t clover-cd:0.1.0 .                        # builtin load engine
#   docker build -t clover-cd-jmeter:0.1.0 --target jmeter . # plus Debian's JMeter and a JRE
# scripts/build-images.sh builds the same layout from Debian packages where they cannot (README "Images").
# Layout: /app/{package.json,bin,dist,node_modules (production only),examples,deploy/sdc}; uid 10001;
# writes only to /tmp and /var/lib/clover-cd, so the root filesystem can be read-only.

FROM node:20-bookworm-slim AS build
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

FROM node:20-bookworm-slim AS runtime
RUN groupadd --gid 10001 clover && useradd --uid 10001 --gid 10001 --home-dir /var/lib/clover-cd --shell /usr/sbin/nologin clover \
 && mkdir -p /var/lib/clover-cd && chown 10001:10001 /var/lib/clover-cd \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx /usr/local/lib/node_modules/corepack /usr/local/bin/corepack /opt/yarn* /usr/local/bin/yarn*
COPY --from=build /app /app
ENV NODE_ENV=production CLOVER_CD_STATE_DIR=/var/lib/clover-cd HOME=/tmp XDG_CACHE_HOME=/tmp/cache
USER 10001:10001
WORKDIR /var/lib/clover-cd
EXPOSE 8080
ENTRYPOINT ["node", "/app/bin/clover-cd.js"]

# JMeter: Debian's 2.13 uses the system XStream, whose allow-list blocks JMeter's classes; clover-cd starts it
# through its launcher (src/jmeter/launcher), compiled here so the image needs only a JRE at run time.
FROM runtime AS jmeter
USER 0
RUN apt-get update && apt-get install -y --no-install-recommends jmeter default-jdk-headless \
 && mkdir -p /app/jmeter-launcher \
 && javac -nowarn -cp /usr/share/jmeter/bin/ApacheJMeter.jar -d /app/jmeter-launcher /app/dist/jmeter/launcher/JMeterXStreamFix.java \
 && touch /app/jmeter-launcher/*.class \
 && rm -rf /var/lib/apt/lists/*
ENV CLOVER_CD_JMETER_LAUNCHER_DIR=/app/jmeter-launcher
USER 10001:10001

# The default target is the image without JMeter.
FROM runtime
