# syntax=docker/dockerfile:1
# segmentd container image: built on Debian 12, run on Debian 12 slim.
#
#   docker build -t segmentd:0.1.0 .
#   docker run -p 8080:8080 -v segmentd-data:/data segmentd:0.1.0
#
# Extra arguments go to `segmentd serve` (e.g. `--train-min 500`); every flag
# also has a SEGMENTD_* environment variable (`segmentd --help`). Other
# subcommands: `docker run --rm segmentd:0.1.0 version` needs
# `--entrypoint segmentd`, e.g.
#   docker run --rm --entrypoint segmentd segmentd:0.1.0 version
#
# The build stage runs scripts/package.sh, the same steps `scripts/package.sh
# all` runs on a Debian 12 machine (and, quickly, the ctest package_check).

FROM debian:12 AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN scripts/package.sh build /stage

FROM debian:12-slim
LABEL org.opencontainers.image.title="segmentd" \
      org.opencontainers.image.description="User segments and text intents discovered from embeddings, over HTTP" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT"
# Runtime libraries only (scripts/package.sh checks the binary needs no more).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 libopenblas0-pthread libsqlite3-0 libcurl4 \
      libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 segmentd \
 && useradd --system --uid 10001 --gid segmentd --home-dir /data \
      --shell /usr/sbin/nologin segmentd \
 && install -d -o segmentd -g segmentd -m 0750 /data
COPY --from=build /stage/bin/segmentd /usr/local/bin/segmentd
COPY --from=build /stage/share/doc/segmentd/LICENSE /usr/local/share/doc/segmentd/LICENSE

ENV SEGMENTD_LISTEN=0.0.0.0:8080 \
    SEGMENTD_DB=/data/segmentd.db
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# /healthz on the default port (change it here if SEGMENTD_LISTEN changes).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["segmentd", "serve"]
