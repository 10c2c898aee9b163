# segmentd container image: build on Debian 12, run on Debian 12 slim.
#
#   docker build -t segmentd:0.1.0 .
#   docker run -p 8080:8080 -v segmentd-data:/data segmentd:0.1.0
#
# Extra arguments go to `segmentd serve` (e.g. `--train-min 500`); every flag
# also has a SEGMENTD_* environment variable (`segmentd --help`).

FROM debian:12-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config git \
      libmicrohttpd-dev libjansson-dev libopenblas-dev libsqlite3-dev \
      libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j"$(nproc)" --target segmentd \
 && strip build/segmentd

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 libopenblas0-pthread libsqlite3-0 libcurl4 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 segmentd \
 && useradd --system --uid 10001 --gid segmentd --home-dir /data \
      --shell /usr/sbin/nologin segmentd \
 && install -d -o segmentd -g segmentd -m 0750 /data
COPY --from=build /src/build/segmentd /usr/local/bin/segmentd
COPY LICENSE /usr/local/share/doc/segmentd/LICENSE

ENV SEGMENTD_LISTEN=0.0.0.0:8080 \
    SEGMENTD_DB=/data/segmentd.db
USER segmentd
WORKDIR /data
VOLUME /data
EXPOSE 8080
STOPSIGNAL SIGTERM
# No curl in the image: bash's /dev/tcp asks /healthz on the default port.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["segmentd", "serve"]
