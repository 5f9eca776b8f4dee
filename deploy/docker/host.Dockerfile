# syntax=docker/dockerfile:1
#
# The parent-side API server (`nitro-wallet serve`) as a container image. Build it from the
# repository root with deploy/scripts/build-host.sh, which also extracts the binary that the EC2
# deployment runs natively under systemd (see deploy/README.md, "Why the host is not a
# container on EC2"). Run the image elsewhere like this:
#
#   docker run --rm -p 8443:8443 \
#     -v /etc/nitro-wallet:/etc/nitro-wallet:ro -v nitro-wallet-state:/var/lib/nitro-wallet \
#     --security-opt seccomp=<profile allowing socket(AF_VSOCK)> nitro-wallet-host
#
# Docker's default seccomp profile refuses socket(AF_VSOCK, ...), which the vsock://16:5000
# enclave endpoint needs; and on EC2 a container on the default bridge needs an IMDS hop
# limit of 2 to reach the instance role's credentials.

# Same builder as deploy/docker/enclave.Dockerfile (keep the two in step).
ARG RUST_IMAGE=rust:1.95.0-bookworm

FROM ${RUST_IMAGE} AS builder
ARG SOURCE_DATE_EPOCH=0
ENV SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH} \
    CARGO_INCREMENTAL=0 \
    CARGO_NET_RETRY=5 \
    CARGO_TERM_COLOR=never \
    RUSTFLAGS="--remap-path-prefix=/build=/nitro-wallet --remap-path-prefix=/usr/local/cargo=/cargo -C strip=debuginfo" \
    CFLAGS="-ffile-prefix-map=/build=/nitro-wallet -ffile-prefix-map=/usr/local/cargo=/cargo"
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY --chmod=0755 deploy/docker/stage-rootfs.sh /usr/local/bin/stage-rootfs
RUN cargo build --release --locked -p nitro-wallet
# The binary, the glibc/libgcc files it loads, the CA bundle (Secrets Manager, STS and IMDS
# are called over TLS with the system roots), and the few /etc files glibc and a non-root
# user need. uid/gid 65532 is the customary "nonroot" of minimal images.
RUN stage-rootfs /rootfs target/release/nitro-wallet /usr/local/bin/nitro-wallet \
        /etc/ssl/certs/ca-certificates.crt \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnitro-wallet:x:65532:65532:nitro-wallet:/var/lib/nitro-wallet:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnitro-wallet:x:65532:\n' > /rootfs/etc/group \
 && printf 'hosts: files dns\n' > /rootfs/etc/nsswitch.conf \
 && mkdir -p /state \
 && find /rootfs/etc /state -exec touch -h -d "@${SOURCE_DATE_EPOCH}" {} +

# Runtime: no shell, no package manager, no compiler.
FROM scratch
COPY --from=builder /rootfs/ /
COPY --from=builder --chown=65532:65532 /state/ /var/lib/nitro-wallet/
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/nitro-wallet"]
CMD ["serve", "--config", "/etc/nitro-wallet/config.toml", "--log-format", "json"]
