#!/usr/bin/env bash
# Stages the root file system of a `FROM scratch` runtime image: one dynamically linked
# executable, exactly the shared libraries it loads (resolved by the dynamic loader of the build
# image, so they match the glibc it was linked against), the CA bundle, and optional extra
# files. Every file and directory gets the same mtime (SOURCE_DATE_EPOCH), so that the image,
# and for the enclave the EIF and its PCR0, do not depend on when the build ran.
#
# usage: stage-rootfs.sh ROOTFS EXECUTABLE DEST_PATH [EXTRA_FILE...]
#   ROOTFS      directory to fill (created)
#   EXECUTABLE  the binary to install
#   DEST_PATH   where it goes inside ROOTFS, e.g. /nitro-wallet-enclave
#   EXTRA_FILE  files copied to the same path inside ROOTFS (e.g. /etc/ssl/certs/ca-certificates.crt)
#
# Runs in the Dockerfiles' builder stage; deploy/test.sh also runs it on /bin/true and checks
# that the result executes under chroot.
set -euo pipefail

die() { printf 'stage-rootfs: %s\n' "$*" >&2; exit 1; }

[ "$#" -ge 3 ] || die "usage: stage-rootfs.sh ROOTFS EXECUTABLE DEST_PATH [EXTRA_FILE...]"
rootfs=$1
exe=$2
dest=$3
shift 3
[ -x "$exe" ] || die "$exe is not an executable file"
case "$dest" in /*) ;; *) die "DEST_PATH must be absolute: $dest" ;; esac
command -v ldd >/dev/null || die "ldd not found (it comes with libc-bin)"

mkdir -p "$rootfs"
install -D -m 0755 "$exe" "$rootfs$dest"

# Every path the loader resolves, including the loader itself. Refuse anything that is not a
# plain glibc/libgcc library: a new dependency must be a deliberate change, because it is
# measured into the enclave's PCR0.
libs=$(ldd "$exe" | awk '/=>/ { print $3; next } /^[[:space:]]*\// { print $1 }')
[ -n "$libs" ] || die "$exe is not dynamically linked; nothing to stage"
for lib in $libs; do
  case "$(basename "$lib")" in
    ld-linux-*.so.* | libc.so.* | libm.so.* | libgcc_s.so.* | libpthread.so.* | libdl.so.* | librt.so.*) ;;
    *) die "unexpected shared library $lib: add it here deliberately (it changes PCR0)" ;;
  esac
  [ -e "$lib" ] || die "ldd names $lib, which does not exist"
  # -L: copy the file a symlink points to, under the name the loader asks for.
  cp -L --parents "$lib" "$rootfs"
done

for extra in "$@"; do
  [ -f "$extra" ] || die "extra file $extra does not exist"
  cp -L --parents "$extra" "$rootfs"
done

# Fixed mtimes (directories included) and no group/other write bits.
epoch=${SOURCE_DATE_EPOCH:-0}
chmod -R go-w "$rootfs"
find "$rootfs" -exec touch -h -d "@$epoch" {} +
