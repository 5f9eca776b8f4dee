# syntax=docker/dockerfile:1
#
# The enclave image: `nitro-cli build-enclave` turns it into the EIF, and everything in it (the
# binary, its libraries, the command line and the environment) is measured into PCR0, which
# the KMS key policy pins. Build it only through deploy/scripts/build-eif.sh, from the
# repository root:
#
#   deploy/scripts/build-eif.sh --region eu-west-1
#
# Reproducibility: the same commit, builder image digest, REGION and SOURCE_DATE_EPOCH give the
# same binary and the same file tree with the same mtimes, hence the same PCR0. Pin RUST_IMAGE
# by digest for releases (build-eif.sh --release refuses a tag without @sha256:...).

# rust 1.95.0 on Debian 12: the toolchain this repository is built and tested with.
ARG RUST_IMAGE=rust:1.95.0-bookworm

FROM ${RUST_IMAGE} AS builder
ARG SOURCE_DATE_EPOCH=0
# Paths are remapped so that neither the build directory nor CARGO_HOME ends up in the binary
# (panic locations, debug info); C code (aws-lc, libsecp256k1) gets the same through CFLAGS.
# The linker's build id is a hash of the output, so it is deterministic too.
ENV SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH} \
    CARGO_INCREMENTAL=0 \
    CARGO_NET_RETRY=5 \
    CARGO_TERM_COLOR=never \
    RUSTFLAGS="--remap-path-prefix=/build=/nitro-wallet --remap-path-prefix=/usr/local/cargo=/cargo -C strip=debuginfo" \
    CFLAGS="-ffile-prefix-map=/build=/nitro-wallet -ffile-prefix-map=/usr/local/cargo=/cargo"
WORKDIR /build
# Only what the build reads: a change anywhere else in the repository cannot move PCR0.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY --chmod=0755 deploy/docker/stage-rootfs.sh /usr/local/bin/stage-rootfs
RUN cargo build --release --locked -p nitro-wallet-enclave
# Declared after the build so that every region shares the compiled layers. An empty or
# malformed REGION stops the build here; the runtime stage bakes it in.
ARG REGION
# The runtime root: the binary, the glibc/libgcc files it loads (from this same image, so they
# match the glibc it was linked against) and the CA bundle, all with mtime SOURCE_DATE_EPOCH.
# KMS is reached over TLS that ends inside the enclave; its roots are compiled into the binary
# (webpki-roots) for the vsock-proxy path, and the bundle serves the SDK's default client.
RUN case "$REGION" in \
      [a-z][a-z]-*-[0-9] | [a-z][a-z]-gov-*-[0-9]) ;; \
      *) echo "build argument REGION must be an AWS region such as eu-west-1, got '$REGION'" >&2; exit 1 ;; \
    esac \
 && stage-rootfs /rootfs target/release/nitro-wallet-enclave /nitro-wallet-enclave \
        /etc/ssl/certs/ca-certificates.crt

# Runtime: no shell, no package manager, no compiler; only the staged files. The binary links
# glibc dynamically (its allocator is mimalloc, compiled in), and the enclave has its own root
# file system, so the parent's glibc is irrelevant.
FROM scratch
# The enclave gets no environment from the parent: its region is baked in here, and so is
# part of PCR0 (an image built for another region has another PCR0).
ARG REGION
COPY --from=builder /rootfs/ /
# Exec-form ENTRYPOINT does not expand build arguments, so the region travels in the
# environment variable the enclave reads for --kms-region (the image's ENV is written into the
# EIF and measured). The builder stage refused an empty or malformed REGION, which would
# otherwise fall back to the binary's default (us-east-1) at run time.
ENV NITRO_WALLET_KMS_REGION=${REGION}
# nitro-cli runs the image's CMD when there is one and the ENTRYPOINT only when there is none
# (it never joins them, unlike docker run), so the whole command line is the ENTRYPOINT and CMD
# stays unset; build-eif.sh checks both. No USER: the enclave's init runs the command as root
# whatever the image says, and /dev/nsm is root's; there is nothing else in the enclave to
# protect from that process.
ENTRYPOINT ["/nitro-wallet-enclave", "--listen", "vsock://any:5000", "--kms-proxy", "vsock://3:8000"]
