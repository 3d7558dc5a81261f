# syntax=docker/dockerfile:1
#
# flowbot in a container.
#
#   docker build -t flowbot .
#   docker run --rm flowbot flowbot check /app/flows/default.yaml
#   docker run -d --name flowbot --env-file .env -v flowbot-data:/data \
#       -p 127.0.0.1:8080:8080 flowbot
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.
# docker-compose.yml beside this file is the usual way to run it; the README's
# "Deploying" section explains both.

ARG RUST_VERSION=1.95

# --- Build -------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src

# The whole tree (minus .dockerignore) goes in; dependencies are not rebuilt
# on every change because the registry and target/ live in BuildKit cache
# mounts that survive between builds. A cache mount is not part of the image,
# so the binary is copied out of target/ in the same step.
COPY . .
RUN --mount=type=cache,id=flowbot-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=flowbot-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=flowbot-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bin flowbot \
 && install -D -m 0755 target/release/flowbot /out/flowbot

# --- Runtime -----------------------------------------------------------------
# debian:bookworm-slim rather than gcr.io/distroless/cc-debian12:nonroot.
# Distroless would be about 50 MB smaller, but it has no shell at all, and
# this image uses one: the HEALTHCHECK below talks HTTP through bash's
# /dev/tcp (neither image has curl, and adding it is not worth it), and the
# admin's `docker compose exec flowbot …` commands (backups with a dated
# name, `rm`, `ls /data`) need a shell and coreutils. Both bases are Debian 12
# with the same glibc, so the binary is the same either way.
FROM debian:bookworm-slim

# The binary links only glibc and libgcc_s (TLS is rustls, SQLite is built
# in), so no OpenSSL. ca-certificates: the system CA store for https to
# Telegram and Wahelp (and any proxy); tzdata: local time for `date` in the
# admin's commands (set TZ=Europe/Moscow, say). The flow's own time zone is
# compiled into the binary and needs neither.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid/gid (10001), so files in the volume keep their owner
# across rebuilds and a host folder can be chown'ed to it. /data is created
# here, owned by that user, so a new named volume starts out writable by it.
RUN groupadd --system --gid 10001 flowbot \
 && useradd --system --uid 10001 --gid flowbot --home-dir /data \
        --no-create-home --shell /usr/sbin/nologin flowbot \
 && install -d -o flowbot -g flowbot -m 0750 /data

COPY --from=build /out/flowbot /usr/local/bin/flowbot
# The flow baked in as a default; docker-compose.yml mounts the host's
# flows/ folder over it so the owner edits on the host (hot reload sees it).
COPY --chown=root:root flows/ /app/flows/

# The working directory holds the flow (and would hold a .env, but in a
# container the variables come from the environment: `--env-file .env` or
# compose's env_file). `flowbot check` and `flowbot test` find
# flows/default.yaml and flows/tests/ here by default.
WORKDIR /app
ENV DATABASE_PATH=/data/flowbot.db \
    FLOW_PATH=/app/flows/default.yaml \
    HTTP_LISTEN=0.0.0.0:8080

USER 10001:10001
VOLUME ["/data"]
# POST /wahelp/webhook, POST /telegram/webhook, GET /healthz, GET /metrics.
EXPOSE 8080

# SIGTERM (docker stop) stops the bot cleanly: it finishes the messages in
# hand and exits. SIGHUP (docker kill -s HUP) re-reads the flow.
STOPSIGNAL SIGTERM

# /healthz answers 200, or 503 when the database is unreachable or Telegram
# polling has been failing for minutes. No curl in the image: bash's /dev/tcp
# sends the request. Port from HTTP_LISTEN (the bot must listen on 0.0.0.0 or
# 127.0.0.1 for this to reach it). Docker only marks the container unhealthy;
# `restart:` does not act on it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HTTP_LISTEN##*:} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

CMD ["flowbot", "run"]
