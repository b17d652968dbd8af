/**
 * A cheap identity of a disk's contents: its size and an FNV-1a hash (two lanes) of its first
 * MiB, where partition tables and filesystem superblocks live. A restore or an incoming
 * migration checks it to tell that the disk it was given is the disk the machine had; it
 * tells disks apart and notices most changes, it is a check, not a proof.
 */
import type { BlockBackend } from './backend.ts';

/** Bytes of a disk hashed for its identity. */
const IDENTITY_BYTES = 1 << 20;

/** `size:hash` of `b`'s size and first MiB. */
export function diskIdentity(b: BlockBackend): string {
  const buf = new Uint8Array(Math.min(IDENTITY_BYTES, b.size));
  b.read(0, buf);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ b.size;
  for (let i = 0; i < buf.length; i++) {
    h1 = Math.imul(h1 ^ buf[i]!, 0x01000193);
    h2 = Math.imul(h2 ^ buf[i]!, 0x0100_0193 + 0x1000);
  }
  return `${b.size}:${(h1 >>> 0).toString(16).padStart(8, '0')}${(h2 >>> 0).toString(16).padStart(8, '0')}`;
}
