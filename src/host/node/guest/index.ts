/**
 * The default guest: Debian unstable's riscv64 kernel, busybox and OpenSBI, with an
 * initramfs and an ext4 root disk built by virtus. `virtus run` without --kernel calls
 * ensureDefaultGuest() and boots what it returns.
 */
export { currentGuest, ensureDefaultGuest, fetchDefaultGuest, type DefaultGuest, type GuestOptions } from './fetch.ts';
export { ensureRootDisk, rootDiskPath, type RootDiskOptions } from './disk.ts';
export { cacheRoot, dataRoot } from './cache.ts';
export { MARKERS } from './scripts.ts';
export { stderrProgress, quiet, type ProgressFn } from './progress.ts';
export type { GuestManifest } from './build.ts';
