# syntax=docker/dockerfile:1
#
# mini-discord: a static (musl) binary in an empty image.
#   docker build -t mini-discord .        (or: docker compose up --build -d)
#
# Stage 1 builds with the official Rust image; rusqlite's bundled SQLite is compiled by
# musl-gcc, so the result has no dynamic dependencies at all.
FROM rust:1-bookworm AS build

RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl

WORKDIR /src
COPY . .

# Name of the binary target in Cargo.toml.
ARG BIN=mini-discord
ENV CC_x86_64_unknown_linux_musl=musl-gcc

# BuildKit cache mounts keep the crate registry and target dir between builds; the
# binary is copied out of the cached target dir into /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin "$BIN" \
 && mkdir -p /out \
 && cp "target/x86_64-unknown-linux-musl/release/$BIN" /out/mini-discord

# The runtime image has no shell or mkdir: prepare its directories here. /data holds the
# database and must belong to the non-root user; /tmp is for SQLite temp files.
RUN mkdir -p /rootfs/data /rootfs/tmp \
 && chmod 0750 /rootfs/data \
 && chmod 1777 /rootfs/tmp

# Stage 2: nothing but the binary and two directories.
FROM scratch

COPY --from=build /out/mini-discord /mini-discord
COPY --from=build --chown=65532:65532 /rootfs/data /data
COPY --from=build /rootfs/tmp /tmp

# Unprivileged user (the "nonroot" uid of distroless images); no /etc/passwd needed.
USER 65532:65532

ENV DATA_DIR=/data \
    LISTEN_ADDR=0.0.0.0:8000

# A new named volume is initialised from this directory, ownership included.
VOLUME /data
EXPOSE 8000

# `healthcheck` GETs http://127.0.0.1:<LISTEN_ADDR port>/healthz and exits 0 or 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/mini-discord", "healthcheck"]

ENTRYPOINT ["/mini-discord"]
