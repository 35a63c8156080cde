# signet's container image.
#
#   docker build -t signet:0.1.0 .
#       The production image (the last stage, "runtime"): one file of ours,
#       /usr/local/bin/signet, on distroless (glibc, CA certificates, no
#       shell, no package manager), run as the numeric user 65532.
#       Kubernetes: helm/signet.
#
#   docker build --target softhsm-dev -t signet:softhsm-dev .
#       DEVELOPMENT ONLY: the same binary on Debian with SoftHSM2 and OpenSC;
#       a throw-away token is created on first start, its PINs in plain
#       files beside it. Never deploy it.
#
# The build needs only crates.io (Cargo.lock pins every crate, --locked
# keeps it so); protobuf is compiled by protox, no protoc is needed.
# What the runtime image contains beyond its base: the crates listed by
# scripts/sbom.sh, a CycloneDX SBOM of this binary (docs/supply-chain.md).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
ARG DEV_IMAGE=debian:bookworm-slim

# --- builder ----------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Only what the build reads (.dockerignore admits nothing else).
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo build --release --locked --bin signet \
 && install -D -m 0755 target/release/signet /out/signet

# --- softhsm-dev: DEVELOPMENT ONLY ------------------------------------------
FROM ${DEV_IMAGE} AS softhsm-dev
LABEL org.opencontainers.image.title="signet (softhsm-dev)" \
      org.opencontainers.image.description="DEVELOPMENT ONLY: signet with a throw-away SoftHSM2 token; PINs are stored in plain files"
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 opensc ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 signet \
 && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/signet-dev \
      --no-create-home --shell /usr/sbin/nologin signet \
 && install -d -o 65532 -g 65532 -m 0700 /var/lib/signet-dev
COPY softhsm/make-token.sh /usr/local/lib/signet/make-token.sh
COPY docker/softhsm-dev-entrypoint.sh /usr/local/bin/softhsm-dev-entrypoint
COPY --from=builder /out/signet /usr/local/bin/signet
# The token (and its PINs) are created at start-up in this writable
# directory, never at build time, so no image layer holds a PIN.
ENV SIGNET_DEV_DIR=/var/lib/signet-dev
VOLUME ["/var/lib/signet-dev"]
USER 65532:65532
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/softhsm-dev-entrypoint"]
CMD ["serve"]

# --- runtime (default target) ------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
LABEL org.opencontainers.image.title="signet" \
      org.opencontainers.image.description="gRPC signing service: keys in a PKCS#11 HSM or in memory" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/signet /usr/local/bin/signet
USER 65532:65532
# 50051: gRPC (TLS outside loopback). 9090: admin, plaintext (health, /metrics).
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/signet"]
CMD ["serve"]
