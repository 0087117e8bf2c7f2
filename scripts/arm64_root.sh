#!/usr/bin/env bash
# Makes what scripts/arm64_verify.py needs to run LiteRT's aarch64 kernels on an x86 machine
# (as root, on a Debian host, with network to deb.debian.org and PyPI):
#   - Debian 13's qemu-aarch64 (10.x, statically linked): it gives the guest an arm64
#     /proc/cpuinfo (Debian 12's qemu 7.2 passes the host's x86 one through and LiteRT's CPU
#     detection crashes), and it does not corrupt int8 XNNPACK output under -cpu max as 7.2
#     does; registered in binfmt_misc with the F flag, so the root filesystem needs no copy;
#   - an arm64 Debian 12 root filesystem (debootstrap), with /proc, /dev and /sys mounted: without
#     /sys, XNNPACK cannot read the CPU's features and LiteRT silently runs without it;
#   - a virtualenv in it, /opt/litert, with numpy and ai-edge-litert's aarch64 wheel.
# Usage: sudo scripts/arm64_root.sh [ROOT]   (default /srv/arm64; about 10 minutes on 2 cores)
set -euo pipefail
ROOT=${1:-/srv/arm64}
QEMU=/usr/local/bin/qemu-aarch64-debian13
LITERT_VERSION=$(python3 -c "from importlib import metadata; print(metadata.version('ai-edge-litert'))" 2>/dev/null || echo "")

if [ ! -x "$QEMU" ]; then
  work=$(mktemp -d)
  echo "deb http://deb.debian.org/debian trixie main" > "$work/sources.list"
  apt_options=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=-
               -o "Dir::State::Lists=$work/lists")
  mkdir -p "$work/lists/partial"
  apt-get "${apt_options[@]}" update -qq
  (cd "$work" && apt-get "${apt_options[@]}" download qemu-user 2>/dev/null)
  dpkg-deb -x "$work"/qemu-user_*.deb "$work/x"
  install -m 755 "$work/x/usr/bin/qemu-aarch64" "$QEMU"
  rm -rf "$work"
fi

mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64  # replace another qemu's registration
fi
printf '%s' ':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$QEMU"':OCF' \
  > /proc/sys/fs/binfmt_misc/register

if [ ! -x "$ROOT/usr/bin/python3" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$ROOT" http://deb.debian.org/debian
fi
for fs in proc dev sys; do
  mountpoint -q "$ROOT/$fs" || mount --bind "/$fs" "$ROOT/$fs"
done
# The host's name server and CA bundle (a proxy's CA included), so that pip reaches PyPI as the
# host does; a clean environment, so that the host's pip settings do not leak in.
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/host-ca-certificates.crt"
inside() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root "$@"; }
if [ ! -x "$ROOT/opt/litert/bin/python" ]; then
  inside python3 -m venv /opt/litert
fi
inside /opt/litert/bin/pip install -q --cert /etc/ssl/certs/host-ca-certificates.crt \
  numpy "ai-edge-litert${LITERT_VERSION:+==$LITERT_VERSION}"
inside /opt/litert/bin/python -c "import ai_edge_litert.interpreter, platform; print('arm64 root ready:', platform.machine())"
