# natpilotd for a home server. Built with the same scripts CI runs: scripts/setup.sh installs the
# Debian packages, scripts/build.sh builds (warnings are errors, as in CI).
#
#   docker build -t natpilot .          (podman build --format docker -t natpilot . keeps the HEALTHCHECK)
#   docker run -d --name natpilot --network host -v natpilot:/var/lib/natpilot \
#     -v ./natpilot.toml:/etc/natpilot/natpilot.toml:ro natpilot
#
# --network host: natpilotd must see the LAN's default route and gateway, send and receive SSDP
# multicast (UPnP discovery), hear PCP ANNOUNCEs on UDP 5350, and ask the gateway for mappings to
# the LAN devices' real addresses; a bridged container network would hide all of that behind
# another NAT.

FROM debian:bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN rm -rf build build-* && NATPILOT_TESTS=OFF bash scripts/build.sh --target natpilotd natpilot \
 && strip build/service/natpilotd build/clients/natpilot

FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY scripts/setup.sh /tmp/setup.sh
RUN bash /tmp/setup.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/setup.sh \
 && useradd --system --user-group --home-dir /var/lib/natpilot --shell /usr/sbin/nologin natpilot \
 && install -d -o natpilot -g natpilot -m 0750 /var/lib/natpilot \
 && install -d -m 0755 /etc/natpilot
COPY --from=build /src/build/service/natpilotd /usr/sbin/natpilotd
COPY --from=build /src/build/clients/natpilot /usr/bin/natpilot
COPY service/packaging/natpilot.toml /etc/natpilot/natpilot.toml.example
USER natpilot
WORKDIR /var/lib/natpilot
# The database, the unix socket, the admin token and the rule files.
VOLUME /var/lib/natpilot
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["natpilot", "--socket", "/var/lib/natpilot/natpilot.sock", "health"]
# /etc/natpilot/natpilot.toml is read when it is mounted; the embedded defaults otherwise.
ENTRYPOINT ["/bin/sh", "-c", "if [ -f /etc/natpilot/natpilot.toml ]; then exec natpilotd --config /etc/natpilot/natpilot.toml \"$@\"; else exec natpilotd \"$@\"; fi", "natpilotd"]
