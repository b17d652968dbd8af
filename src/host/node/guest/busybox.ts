/**
 * The applets a BusyBox binary provides, read from the binary itself: the host cannot run a
 * riscv64 busybox to ask `busybox --list`, yet the guest's file systems want every applet
 * as a symlink at build time. BusyBox keeps its applet names as one sorted table of
 * NUL-terminated strings that begins with "[" and "[[" (the test applets).
 */
import { VirtusError } from '../../../util/errors.ts';
import { NET_APPLETS } from './network.ts';

/** Applets the guest's /init, rcS and inittab rely on; a busybox without them is refused. */
export const REQUIRED_APPLETS = ['sh', 'init', 'mount', 'umount', 'insmod', 'switch_root', 'poweroff', 'reboot', 'cttyhack', 'usleep', 'cat', 'mkdir', 'grep', 'awk', 'hostname', 'sync', 'echo', ...NET_APPLETS];

const NAME = /^[a-z0-9][a-z0-9_.+-]*$/;

/**
 * Reads the applet names from a busybox binary, in its sorted order. Every "[" followed by
 * a NUL starts a candidate table; the longest sorted run of names wins (stray "[" bytes in
 * code or other strings give runs of a name or two).
 */
export function busyboxApplets(binary: Uint8Array): string[] {
  let names: string[] = [];
  for (let i = 0; i + 2 < binary.length; i++) {
    if (binary[i] !== 0x5b || binary[i + 1] !== 0) continue;
    const run = readTable(binary, i);
    if (run.length > names.length) names = run;
  }
  const missing = REQUIRED_APPLETS.filter((a) => !names.includes(a));
  if (missing.length > 0) {
    throw new VirtusError('GUEST_BUSYBOX', `cannot find the applets the guest needs in the busybox binary: ${missing.join(', ')}`);
  }
  return names;
}

/** The sorted run of NUL-terminated names starting at `at` (strcmp order, as busybox sorts). */
function readTable(b: Uint8Array, at: number): string[] {
  const names: string[] = [];
  while (at < b.length) {
    let end = at;
    while (end < b.length && b[end] !== 0 && end - at < 64) end++;
    if (end >= b.length || b[end] !== 0) break;
    const name = String.fromCharCode(...b.subarray(at, end));
    const ok = name === '[' || name === '[[' || NAME.test(name);
    if (!ok || (names.length > 0 && !(names[names.length - 1]! < name))) break;
    names.push(name);
    at = end + 1;
  }
  return names;
}
