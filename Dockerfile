# Bridge's image, in two stages:
#   build    Debian 12 with exactly the packages CI installs (.ci/packages.txt, the one
#            list), building the `bridge` server and the `bridgectl` client;
#   runtime  debian:12-slim with only the packages that own the shared libraries those two
#            binaries load, the demo page, and a non-root user.
# docker-compose.yml builds it; alone: docker build -t bridge . && docker run -p 50051:50051
# -p 8080:8080 -e BRIDGE_REDIS=redis://host.docker.internal:6379 bridge

FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive
# The same list as CI: add a package to .ci/packages.txt and both get it.
COPY .ci/packages.txt /tmp/packages.txt
RUN apt-get update \
 && grep -v '^[[:space:]]*#' /tmp/packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DBUILD_TESTING=OFF -DBRIDGE_BENCH=OFF \
 && cmake --build /build --target bridge bridgectl \
 && mkdir -p /out/bin \
 && install -s /build/bridge/bridge /build/clients/cli/bridgectl /out/bin/
# The runtime packages are derived, not listed: whatever package owns a library that ldd
# finds. (Debian 12 is usr-merged, and dpkg knows some libraries under /lib, others under
# /usr/lib: hence the three spellings.)
RUN ldd /out/bin/* | awk '$3 ~ /^\// {print $3}' | sort -u \
    | while read -r lib; do \
        dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null \
          || dpkg -S "/usr$lib" 2>/dev/null || { echo "no package owns $lib" >&2; exit 1; }; \
      done \
    | cut -d: -f1 | tr ',' '\n' | awk 'NF {print $1}' | sort -u > /out/runtime-packages.txt \
 && cat /out/runtime-packages.txt

FROM debian:12-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && xargs apt-get install -y --no-install-recommends < /tmp/runtime-packages.txt \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin bridge
COPY --from=build /out/bin/ /usr/local/bin/
COPY clients/web/ /usr/share/bridge/web/

USER bridge:bridge
# Every flag of `bridge` also reads BRIDGE_<FLAG>; the command line wins.
ENV BRIDGE_GRPC_ADDR=0.0.0.0:50051 \
    BRIDGE_WS_ADDR=0.0.0.0:8080 \
    BRIDGE_WEB_ROOT=/usr/share/bridge/web \
    BRIDGE_ADDR=127.0.0.1:50051
EXPOSE 50051 8080
# SERVING only while Bridge is connected to Redis.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bridgectl", "health", "--timeout", "2s"]
# SIGTERM drains: WebSocket close 1001, gRPC UNAVAILABLE, exit within --shutdown_grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["bridge"]
