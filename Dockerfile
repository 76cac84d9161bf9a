# syntax=docker/dockerfile:1
#
# mcp-gateway in a container: the same binary as the Lambda function, running `serve` (ECS,
# Kubernetes, a VM with Docker). README.md, "Container", has the walk-through.
#
#   docker build -t mcp-gateway .
#   docker run --read-only --tmpfs /tmp -p 8080:8080 \
#     -v "$PWD/examples/data:/data:ro" -v "$PWD/config:/config:ro" -e MCP_ACCESS=/config/access.toml \
#     mcp-gateway
#
# Authentication is on by default. `serve` listens on 0.0.0.0:8080, which is not a loopback
# address, so it refuses to start without `[auth]` in an access file (examples/access.toml):
# give it with `-e MCP_ACCESS=/config/access.toml` (a local path or s3://bucket/key), or with the
# flag after the image name: `docker run ... mcp-gateway serve --addr 0.0.0.0:8080 --access
# /config/access.toml`. Only `-e MCP_INSECURE_NO_AUTH=true` lets it serve with no credentials
# (anyone who reaches the port may call every tool). Clients must also use a Host name that serve
# allows: loopback names by default, so set `-e MCP_ALLOWED_HOSTS=mcp.example.com` for the name they
# use.
#
# Read-only root file system: `docker run --read-only --tmpfs /tmp` (ECS
# `readonlyRootFilesystem`, Kubernetes `readOnlyRootFilesystem` with an emptyDir on /tmp) works.
# The gateway writes only in the temporary folder (TMPDIR, default /tmp: the S3 dataset cache,
# capped by MCP_CACHE_MAX_BYTES (400MiB) so size the tmpfs to match; the SQL worker's polars
# spills; the staging folder of `index` over S3) and in the data root, only when asked
# (`ALLOW_WRITE=true` for the file_write tool, or the `index` command: mount /data read-write
# for those). It needs no HOME (the AWS SDK only looks for an optional ~/.aws). A stored search
# index (.mcp-index/) loads from a read-only root.
#
# The `db` tool runs each query in a child process: this same binary (/proc/self/exe), started
# directly with an empty environment, needing no shell or other program from the image. It forbids
# itself network sockets with seccomp, which Docker's default seccomp profile allows
# (MCP_DB_SANDBOX=off only for kernels without seccomp). stdio upstreams in an upstreams file
# run commands this image does not have (no shell, node or python): use http upstreams.
#
# The health check runs `mcp-gateway health` (distroless has no curl), a GET of
# http://127.0.0.1:8080/health; serving elsewhere, set MCP_HEALTH_URL. Kubernetes ignores it:
# give the pod probes on /live and /ready instead.

# --------------------------------------------------------------------------------------- build
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Every member of the workspace, since cargo reads each manifest even to build one package.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY functions functions
COPY proxy proxy
COPY benches/compare benches/compare
COPY tests/apigw-standin tests/apigw-standin
# The registry and target folders are BuildKit caches: a rebuild after a source change compiles
# the gateway again, not its hundreds of dependencies. The binary leaves the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p mcp-gateway \
    && install -D -m 0755 target/release/mcp-gateway /out/bin/mcp-gateway \
    && mkdir -p /out/data

# --------------------------------------------------------------------------------------- image
# glibc and libgcc, CA certificates, no shell; :nonroot runs as 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bin/mcp-gateway /usr/local/bin/mcp-gateway
# An empty data root, so the image starts before anything is mounted there (a federation-only
# setup, or DATA_ROOT=s3://bucket/prefix/). Owned by the user, so that a named volume mounted on
# it is writable when ALLOW_WRITE is on.
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATA_ROOT=/data
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/mcp-gateway", "health"]
ENTRYPOINT ["/usr/local/bin/mcp-gateway"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
