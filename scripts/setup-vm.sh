#!/usr/bin/env bash
# Install the host tools ringfence.vm needs: qemu, a static busybox (the guest's initramfs) and kmod
# (depmod). Idempotent: installs only what is missing, and runs `apt-get update` only then.
# virtme-ng (vng) is a Python package: it comes with the project's `vm` extra, not from here.
set -euo pipefail

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in qemu-system-x86 busybox-static kmod; do
        have_pkg "$pkg" || missing+=("$pkg")
    done
else
    command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
    [ -x /bin/busybox ] || missing+=(busybox-static)
    command -v depmod >/dev/null 2>&1 || [ -x /sbin/depmod ] || [ -x /usr/sbin/depmod ] || missing+=(kmod)
fi

# vng reads the kernel's version with `file` (or `strings` from binutils) to find its modules
command -v file >/dev/null 2>&1 || command -v strings >/dev/null 2>&1 || missing+=(file)

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-vm: qemu-system-x86, busybox-static and kmod are installed"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
echo "setup-vm: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
