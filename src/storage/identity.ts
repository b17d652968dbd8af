/**
 * A cheap identity of a disk's contents: its size and a hash of its first MiB, where partition
 * tables and filesystem superblocks live. A restore or an incoming migration checks it to tell
 * that the disk it was given is the disk the machine had; it tells disks apart and notices
 * most changes, it is a check, not a proof (the side that restores chose the disk; the value
 * only guards against the wrong one).
 *
 * The hash takes the MiB a 32-bit word at a time (two FNV-1a-style lanes): an incoming
 * migration hashes its disks inside the downtime, in a thread that has not run the loop before,
 * and the byte-at-a-time hash of earlier versions took about 9 ms there (1.5 ms warm). Identities of that form
 * (`size:` and 16 hex digits, in snapshot files written before) are still checked with it:
 * `sameIdentity`.
 */
import type { BlockBackend } from './backend.ts';

/** Bytes of a disk hashed for its identity; a write below this changes it. */
export const IDENTITY_BYTES = 1 << 20;
/** Marks the word-wise hash in an identity (hex digits never contain it). */
const WORDS = 'w';

function firstMiB(b: BlockBackend): Uint8Array {
  // Whole words: a disk smaller than a MiB whose size is not a multiple of 4 is zero-padded.
  const buf = new Uint8Array((Math.min(IDENTITY_BYTES, b.size) + 3) & ~3);
  b.read(0, buf.subarray(0, Math.min(IDENTITY_BYTES, b.size)));
  return buf;
}

const hex = (h1: number, h2: number): string =>
  (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');

/** `size:w<hash>` of `b`'s size and first MiB. */
export function diskIdentity(b: BlockBackend): string {
  const buf = firstMiB(b);
  const v = new Int32Array(buf.buffer, 0, buf.length >>> 2);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ b.size;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    h1 = Math.imul(h1 ^ x, 0x01000193);
    h2 = Math.imul(h2 ^ x, 0x01001193) ^ (h2 >>> 15);
  }
  return `${b.size}:${WORDS}${hex(h1, h2)}`;
}

/** The identity as versions before the word-wise hash computed it (a byte at a time). */
function byteIdentity(b: BlockBackend): string {
  const buf = firstMiB(b).subarray(0, Math.min(IDENTITY_BYTES, b.size));
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ b.size;
  for (let i = 0; i < buf.length; i++) {
    h1 = Math.imul(h1 ^ buf[i]!, 0x01000193);
    h2 = Math.imul(h2 ^ buf[i]!, 0x0100_0193 + 0x1000);
  }
  return `${b.size}:${hex(h1, h2)}`;
}

/**
 * Whether `recorded` (from a snapshot or a migration stream) is the identity of `b`, whose
 * current identity is `current()` (a device may have it cached).
 */
export function sameIdentity(b: BlockBackend, recorded: string, current: () => string = () => diskIdentity(b)): boolean {
  return recorded.includes(`:${WORDS}`) ? recorded === current() : recorded === byteIdentity(b);
}
