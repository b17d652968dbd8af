/**
 * The user's root disk: a copy of the guest's pristine ext4 image that `virtus run` boots
 * with root=/dev/vda and that keeps the guest's changes from run to run. It lives in the
 * data directory (cache.ts), so a rebuilt guest or a cleared cache never loses it.
 */
import { constants, copyFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { dataRoot, ensureDir } from './cache.ts';
import type { DefaultGuest } from './fetch.ts';

/** Where the default root disk is kept: <data>/root.img. */
export function rootDiskPath(): string {
  return join(dataRoot(), 'root.img');
}

export interface RootDiskOptions {
  /** The disk to use instead of the default path. */
  path?: string;
  /** Replace an existing disk with a fresh copy of the pristine image. */
  reset?: boolean;
}

/**
 * Returns the path of the root disk, first copying the guest's pristine image there when
 * there is no disk yet (or on `reset`). The copy is made beside the target and renamed into
 * place, so an interrupted copy never leaves a half-written disk.
 */
export function ensureRootDisk(guest: DefaultGuest, o: RootDiskOptions = {}): string {
  const path = o.path ?? rootDiskPath();
  if (existsSync(path) && !o.reset) return path;
  if (!o.path) ensureDir(dataRoot());
  const tmp = `${path}.partial`;
  try {
    // FICLONE makes a copy-on-write clone where the file system can; otherwise a plain copy.
    copyFileSync(guest.rootfs, tmp, constants.COPYFILE_FICLONE);
    renameSync(tmp, path);
  } catch (e) {
    throw new VirtusError('GUEST_DISK', `cannot create the root disk ${path}: ${(e as Error).message}`);
  }
  return path;
}
