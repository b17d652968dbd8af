/**
 * The scripts and configuration files of the default guest. Lines the guest prints that
 * start with "virtus-init:" are boot markers, stable so that tests and tools can wait for
 * them (see MARKERS).
 */

/** Boot markers, in the order a boot prints them. */
export const MARKERS = {
  /** /init of the initramfs has started. */
  started: 'virtus-init: started',
  /** Printed after the module loop: "virtus-init: loaded N modules". */
  modulesLoaded: 'virtus-init: loaded ',
  /** A module failed to load: "virtus-init: cannot load module NAME". */
  moduleFailed: 'virtus-init: cannot load module ',
  /** The kernel command line named a root (root=/dev/vda) and /init is switching to it. */
  switchingRoot: 'virtus-init: switching to root ',
  /** No usable root=: the guest runs from the initramfs. */
  initramfsRoot: 'virtus-init: running from the initramfs',
  /** rcS mounted a browser tab's share (TAB_SHARE): "virtus-init: the tab's files are in /mnt/tab". */
  tabShare: 'virtus-init: the tab\'s files are in ',
  /** rcS has finished; a shell follows on the console. "virtus-init: ready, root is X". */
  ready: 'virtus-init: ready',
  /** busybox init is running the shutdown actions (poweroff, reboot). */
  shuttingDown: 'virtus-init: shutting down',
} as const;

import { TAB_SHARE } from '../../../vmm/spec.ts';
import { identityStart, netStart } from './network.ts';

const PATH = '/sbin:/bin:/usr/sbin:/usr/bin';

/**
 * The initramfs's /init: mounts the kernel file systems, loads the modules listed in
 * modules.load (already in dependency order) with insmod, those of a virtio device only when
 * the machine has one (modules.ts, GUEST_MODULES), then either switches to the
 * root the kernel command line names (root=DEVICE, rootfstype=, rootflags=, ro/rw, init=)
 * or runs busybox init from the initramfs. Without ro or rw the root is mounted rw, so a
 * disk's changes persist without a remount step.
 */
export function initScript(release: string): string {
  return `#!/bin/sh
# /init of the virtus default guest's initramfs, written by 'virtus guest fetch'.
export PATH=${PATH}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "${MARKERS.started}, kernel $(uname -r)"

moddir=/lib/modules/${release}
n=0
load() {
  if insmod $moddir/$1.ko; then n=$((n + 1)); else echo "${MARKERS.moduleFailed}$1"; fi
}
if [ "$(uname -r)" = "${release}" ]; then
  # modules.load: a module per line after its dependencies, then the virtio device IDs that
  # want it. First what every machine loads (the virtio transport, which lists the devices),
  # then the drivers and file systems of the devices this machine has.
  while read m ids; do [ -n "$ids" ] || load $m; done < $moddir/modules.load
  present=" "
  for f in /sys/bus/virtio/devices/*/device; do [ -r "$f" ] && present="$present$(($(cat $f))) "; done
  while read m ids; do
    for id in $ids; do
      case "$present" in *" $id "*) load $m; break ;; esac
    done
  done < $moddir/modules.load
else
  echo "virtus-init: these modules are for kernel ${release}, not $(uname -r); loading none"
fi
echo "${MARKERS.modulesLoaded}$n modules"

root=
rootfstype=ext4
rootflags=
mode=rw
init=/sbin/init
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root="\${arg#root=}" ;;
    rootfstype=*) rootfstype="\${arg#rootfstype=}" ;;
    rootflags=*) rootflags=",\${arg#rootflags=}" ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
    init=*) init="\${arg#init=}" ;;
  esac
done

if [ -n "$root" ]; then
  # Block devices appear asynchronously once their driver has probed: wait up to 60 s.
  i=0
  while [ ! -b "$root" ] && [ $i -lt 600 ]; do
    [ $i = 0 ] && echo "virtus-init: waiting for $root"
    usleep 100000
    i=$((i + 1))
  done
  if [ -b "$root" ] && mount -t "$rootfstype" -o "$mode$rootflags" "$root" /newroot; then
    if [ -e "/newroot$init" ] || [ -L "/newroot$init" ]; then
      echo "${MARKERS.switchingRoot}$root ($rootfstype, $mode)"
      mount --move /dev /newroot/dev
      mount --move /sys /newroot/sys
      mount --move /proc /newroot/proc
      exec switch_root /newroot "$init"
    fi
    echo "virtus-init: $root has no $init"
    umount /newroot
  fi
  echo "virtus-init: cannot mount $root as $rootfstype"
fi
echo "${MARKERS.initramfsRoot}"
exec /sbin/init
`;
}

/** /etc/init.d/rcS, busybox init's sysinit step, the same on the initramfs and the disk. */
export function rcScript(): string {
  return `#!/bin/sh
# System start of the virtus default guest, run once by busybox init.
export PATH=${PATH}
mounted() { grep -q " $1 " /proc/mounts; }
[ -e /proc/mounts ] || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts devpts /dev/pts
mounted /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mounted /tmp || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
hostname -F /etc/hostname
ip link set lo up 2>/dev/null
# DAMON_STAT (on in Debian's kernel) samples memory accesses many times a second: an idle guest
# would wake about twelve times a second for statistics nobody here reads.
[ -w /sys/module/damon_stat/parameters/enabled ] && echo N > /sys/module/damon_stat/parameters/enabled
${tabShare()}${identityStart()}${netStart()}root=$(awk '$2 == "/" { r = $1 } END { print r }' /proc/mounts)
echo "${MARKERS.ready}, root is $root; 'poweroff' stops the machine"
`;
}

/**
 * rcS's lines that mount a browser tab's share (TAB_SHARE) when the machine has one: the
 * sysfs mount_tag of a 9pnet_virtio device holds its tag and a NUL. Machines without the tag
 * (every CLI machine unless a --share is named "tab") mount nothing.
 */
function tabShare(): string {
  const { tag, mountPoint } = TAB_SHARE;
  return `for t in /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag; do
  [ -e "$t" ] && [ "$(tr -d '\\000' < "$t")" = ${tag} ] || continue
  mkdir -p ${mountPoint}
  mount -t 9p -o trans=virtio,version=9p2000.L ${tag} ${mountPoint} && echo "${MARKERS.tabShare}${mountPoint}"
done
`;
}

/**
 * busybox init's table: a root shell on the console (cttyhack finds the real terminal
 * behind /dev/console, so job control works), restarted when it exits; on poweroff or
 * reboot, file systems are unmounted or made read-only so a disk is clean.
 */
export function inittab(): string {
  return `# busybox init table of the virtus default guest
::sysinit:/etc/init.d/rcS
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/bin/reboot
::shutdown:/bin/echo "${MARKERS.shuttingDown}"
::shutdown:/bin/umount -a -r 2>/dev/null
::shutdown:/bin/sync
::restart:/sbin/init
`;
}

/** Small files of /etc: who root is, the host name, the shell's prompt. */
export function etcFiles(): Record<string, string> {
  return {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
    'etc/group': 'root:x:0:\n',
    'etc/hostname': 'virtus\n',
    'etc/hosts': '127.0.0.1 localhost virtus\n',
    'etc/fstab': '# the root is mounted by /init; the rest by /etc/init.d/rcS\n',
    'etc/profile': `export PATH=${PATH}\nexport HOME=/root\nexport PS1='\\h:\\w\\$ '\ncd\n`,
  };
}
