#!/usr/bin/env bash
# On a hardware-KVM machine: the end-to-end suite with program and kernel at CPL0 (what
# --cpl auto picks there). On PVM only samples/cpl0 can run at CPL0, which the normal suite
# already covers.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -e /sys/module/kvm_pvm ]; then
  echo "test-cpl0: this is PVM, whose CPL0 emulator cannot run ordinary programs (no SSE);" >&2
  echo "test-cpl0: run this on a machine with hardware KVM (VMX or SVM)" >&2
  exit 2
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
SBX_TEST_CPL=0 ctest --test-dir build --output-on-failure
