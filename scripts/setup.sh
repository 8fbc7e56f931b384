#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian's archive, then builds.
# Usage: ./scripts/setup.sh [--no-build] [--nested]
#   --nested  also what scripts/nested-kvm.sh needs (QEMU, a Debian kernel), for a machine
#             without /dev/kvm
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

if [ -z "${SANDBOX_SKIP_APT:-}" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config clang llvm lld libclang-rt-14-dev \
    libelf-dev libdw-dev libcapstone-dev libbpf-dev libseccomp-dev libjansson-dev \
    libcriterion-dev libzstd-dev libxxhash-dev libsodium-dev musl-tools \
    libmicrohttpd-dev wrk curl nettle-dev afl++ \
    busybox-static bash-static bubblewrap hyperfine clang-format python3 git gdb binutils criu iproute2 \
    bpftool linux-perf golang-go rustc >/dev/null
  case " $* " in *" --nested "*)
    $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86 linux-image-amd64 \
      cpio kmod file xz-utils zstd >/dev/null ;;
  esac
fi

case " $* " in *" --no-build "*) ;; *)
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" ;;
esac
