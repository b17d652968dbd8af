/**
 * Test support for the default guest: builds it once into the user's cache (the first run
 * downloads about 130 MB from the host's Debian mirror), and boots it on QEMU.
 */
import { spawnSync } from 'node:child_process';
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../../src/host/node/guest/index.ts';
import { SerialConsole } from './console.ts';

const PACKAGES: Record<string, string> = {
  'qemu-system-riscv64': 'qemu-system-misc',
  'qemu-riscv64': 'qemu-user',
  modinfo: 'kmod',
  debugfs: 'e2fsprogs',
  cpio: 'cpio',
};

/** Fails with the package to install when `tool` is missing (tests never skip silently). */
export function requireTool(tool: string): void {
  const r = spawnSync('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin" command -v ${tool}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${tool} is not installed (Debian package ${PACKAGES[tool] ?? tool}); .ci/run installs it`);
}

/** The default guest, fetched and built on first use (progress on stderr). */
export function defaultGuest(): Promise<DefaultGuest> {
  return ensureDefaultGuest({ progress: stderrProgress() });
}

export interface BootOptions {
  append?: string;
  /** A raw disk image to attach as a virtio-blk (virtio-mmio) device. */
  disk?: string;
  /** A virtio-net device on QEMU's user network. */
  nic?: boolean;
  /** A host directory shared over virtio-9p, tag host0. */
  share?: string;
  /** A virtio-rng device. */
  rng?: boolean;
}

/** Boots the guest's kernel and initramfs on QEMU's virt machine, console on stdio. */
export function bootOnQemu(g: DefaultGuest, o: BootOptions = {}): SerialConsole {
  requireTool('qemu-system-riscv64');
  const args = [
    '-M', 'virt', '-m', '512M', '-smp', '1', '-nographic',
    '-bios', g.opensbi, '-kernel', g.kernel, '-initrd', g.initrd,
    '-append', `console=ttyS0 ${o.append ?? ''}`.trim(),
    ...(o.disk ? ['-drive', `file=${o.disk},if=none,format=raw,id=d`, '-device', 'virtio-blk-device,drive=d'] : []),
    ...(o.nic ? ['-netdev', 'user,id=n', '-device', 'virtio-net-device,netdev=n'] : []),
    ...(o.share ? ['-fsdev', `local,id=f,path=${o.share},security_model=none`, '-device', 'virtio-9p-device,fsdev=f,mount_tag=host0'] : []),
    ...(o.rng ? ['-device', 'virtio-rng-device'] : []),
  ];
  return SerialConsole.start('qemu-system-riscv64', args);
}
