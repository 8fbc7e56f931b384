#!/usr/bin/env bash
# Runs a command inside a throw-away QEMU VM that has /dev/kvm, for a developer
# whose own machine has none (a PVM guest without the misc device, a container).
# QEMU emulates the CPU (TCG) with AMD SVM, and the VM's Debian kernel loads
# kvm_amd: the sandbox then runs on hardware-KVM code paths, slowly. Timings
# measured this way stand for nothing; behaviour does.
#
#   scripts/nested-kvm.sh 'build/tests/monitor/test_e2e --filter "procs/*"'
#
# The VM sees this machine's root filesystem read-write over 9p and starts in
# the current directory; its /tmp is its own. The command's output and exit
# status come back; the VM's console log is kept in $NKVM_DIR.
# Needs: qemu-system-x86, busybox-static, and a Debian kernel in /boot with its
# modules (scripts/setup.sh --nested installs them).
set -euo pipefail

cmd=${1:?usage: nested-kvm.sh COMMAND}
timeout=${NKVM_TIMEOUT:-900}
mem=${NKVM_MEM:-8G}
kver=${NKVM_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 | sed 's|/boot/vmlinuz-||')}
[ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ] ||
    { echo "nested-kvm: no kernel in /boot (apt-get install linux-image-amd64)" >&2; exit 2; }
bb=$(command -v busybox) || { echo "nested-kvm: busybox not installed" >&2; exit 2; }
file -L "$bb" | grep -q 'statically linked' ||
    { echo "nested-kvm: $bb is not static (apt-get install busybox-static)" >&2; exit 2; }

base=${NKVM_DIR:-/var/tmp/nested-kvm}
mkdir -p "$base"
run=$(mktemp -d "$base/run.XXXXXX")
cp "$bb" "$run/busybox"

# The initramfs holds busybox and the modules that reach the 9p root and KVM,
# in load order; the rest of the system comes from the host's disk.
mods=$(for m in 9p 9pnet_virtio virtio_pci kvm_amd; do
    modprobe -S "$kver" --show-depends "$m"
done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++')
ird=$run/initrd
mkdir -p "$ird/bin" "$ird/mods" "$ird/newroot" "$ird/proc" "$ird/sys" "$ird/dev"
cp "$bb" "$ird/bin/busybox"
i=0
for m in $mods; do
    i=$((i + 1))
    case "$m" in
    *.xz) xz -dc "$m" >"$ird/mods/$(printf %02d $i).ko" ;;
    *.zst) zstd -qdc "$m" >"$ird/mods/$(printf %02d $i).ko" ;;
    *) cp "$m" "$ird/mods/$(printf %02d $i).ko" ;;
    esac
done

printf '%s\n' "$cmd" >"$run/cmd"
cat >"$ird/init" <<EOF
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
for m in /mods/*.ko; do /bin/busybox insmod \$m 2>/dev/null; done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose root /newroot ||
    { echo nested-kvm: no 9p root; /bin/busybox poweroff -f; }
cd /newroot
/bin/busybox mount -t proc proc proc
/bin/busybox mount -t sysfs sys sys
/bin/busybox mount -t devtmpfs dev dev
/bin/busybox mount -t tmpfs tmp tmp
/bin/busybox mkdir -p dev/shm dev/pts
/bin/busybox mount -t tmpfs shm dev/shm
/bin/busybox mount -t devpts pts dev/pts
/bin/busybox ln -sf /proc/self/fd dev/fd
/bin/busybox ln -sf /proc/self/fd/0 dev/stdin
/bin/busybox ln -sf /proc/self/fd/1 dev/stdout
/bin/busybox ln -sf /proc/self/fd/2 dev/stderr
[ -c dev/kvm ] || echo "nested-kvm: /dev/kvm did not appear" >/newroot$run/out
/bin/busybox chroot /newroot $run/busybox sh -c 'cd "$PWD" && export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin && $run/busybox ip link set lo up; sh $run/cmd >>$run/out 2>&1; echo \$? >$run/rc; sync'
echo o >/proc/sysrq-trigger
/bin/busybox poweroff -f
EOF
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$run/initrd.gz"
: >"$run/out"

# svm needs TCG; -cpu max brings SVM and NPT to the VM's KVM.
timeout -k 10 "$timeout" qemu-system-x86_64 -machine q35,accel=tcg -cpu max \
    -smp 2 -m "$mem" -nographic -no-reboot \
    -kernel "/boot/vmlinuz-$kver" -initrd "$run/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init" \
    -virtfs local,path=/,mount_tag=root,security_model=passthrough,multidevs=remap \
    >"$run/console.log" 2>&1 </dev/null || true
cat "$run/out"
rm -rf "$ird" "$run/initrd.gz"
# Under TCG the VM's own kernel can stop for minutes (seen with an idle host: soft lockups of
# its idle task): say so, since the command then looks hung while it is the VM that is.
stalled=$(grep -a -m1 -E 'soft lockup|rcu_preempt detected stalls|Kernel panic' "$run/console.log" || true)
[ -z "$stalled" ] || echo "nested-kvm: the VM's own kernel stalled or panicked (QEMU TCG), not the command: ${stalled#*] }" >&2
[ -s "$run/rc" ] || { echo "nested-kvm: the VM ended without a status; see $run/console.log" >&2; exit 125; }
exit "$(cat "$run/rc")"
