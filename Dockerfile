# lokiship's container image: the release binary on Debian 12 slim, with journalctl.
#
#   docker build -t lokiship:0.1.0 .
#   docker run --rm --read-only -v lokiship-state:/var/lib/lokiship \
#       -v /var/log:/var/log:ro -e LOKI_URL=http://loki:3100 lokiship:0.1.0
#
# glibc on debian:bookworm-slim rather than a static binary on scratch: the journal source runs
# `journalctl` (Debian's systemd package), which needs glibc and systemd's libraries, so a static
# binary would not make the image smaller; and the binary is the one the tests and benches measure
# (glibc + mimalloc), not a musl build nobody ran.
#
# It runs as an unprivileged user (65532) and needs one writable path, /var/lib/lokiship: the
# positions file and the disk queues (lokiship-wal/ beside it) live there, so the root filesystem
# can be read-only. Reading a node's root-owned logs needs uid 0 (without capabilities) or
# CAP_DAC_READ_SEARCH: the Kubernetes manifests in config/kubernetes/ say which and why. The state
# directory belongs to 65532 and group 0 (mode 0770), so that uid 0 without capabilities (no
# CAP_DAC_OVERRIDE) and OpenShift's arbitrary uids (group 0) can write it as well.
# /ready answers 200 once the sources and clients run, for probes; /metrics is Prometheus' format.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crates and the build between `docker build`s; the binary is copied
# out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin lokiship \
    && mkdir -p /out \
    && strip --strip-debug -o /out/lokiship target/release/lokiship

FROM debian:${DEBIAN_RELEASE}-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="lokiship" \
      org.opencontainers.image.description="A log shipper for Grafana Loki that runs Promtail's configuration files" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/lokiship/lokiship" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# systemd only for journalctl; versions are not pinned so that a rebuild takes Debian's
# security updates (a pinned version disappears from the mirror at the next point release).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends systemd \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 lokiship \
    && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/lokiship \
       --no-create-home --shell /usr/sbin/nologin lokiship \
    && install -d -o 65532 -g 0 -m 0770 /var/lib/lokiship
COPY --from=build /out/lokiship /usr/bin/lokiship
COPY config/lokiship.yaml /etc/lokiship/lokiship.yaml
COPY config/k8s-audit.yaml config/syslog.yaml config/auditd.yaml config/journal.yaml /etc/lokiship/presets/
ENV LOKISHIP_POSITIONS=/var/lib/lokiship/positions.yaml
USER 65532:65532
WORKDIR /var/lib/lokiship
VOLUME ["/var/lib/lokiship"]
EXPOSE 9080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/lokiship"]
CMD ["-config.file=/etc/lokiship/lokiship.yaml", "-config.expand-env=true"]
