/**
 * Content digests as the OCI image spec writes them (descriptor.md, "Digests"):
 * `algorithm:encoded`. virtus writes and accepts sha256 only, the one algorithm every
 * registry supports; anything else is refused by name rather than trusted unverified.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { VirtusError } from '../util/errors.ts';

/** A sha256 digest: `sha256:` and 64 lowercase hex digits (descriptor.md, registered algorithms). */
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Validates a digest from untrusted input (a manifest, a header, the command line). */
export function parseDigest(text: string, what: string): string {
  if (DIGEST_RE.test(text)) return text;
  const alg = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):/.exec(text)?.[1];
  if (alg && alg !== 'sha256') throw new VirtusError('DIGEST_UNSUPPORTED', `${what}: digest algorithm '${alg}' is not supported (virtus uses sha256)`);
  throw new VirtusError('DIGEST_INVALID', `${what}: '${text}' is not a sha256 digest (sha256: and 64 hex digits)`);
}

/** The 64 hex digits of a digest. */
export function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** The first 12 hex digits, as `virtus image ls` shows a digest. */
export function shortDigest(digest: string): string {
  return hexOf(digest).slice(0, 12);
}

/** The digest of some bytes. */
export function digestOf(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A running sha256 with a byte count: what every blob is checked with as it streams. */
export class Hasher {
  private readonly hash: Hash = createHash('sha256');
  size = 0;

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  /** The digest so far (the hasher may be updated further afterwards). */
  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }
}

/** The digest and size of a file, read as a stream (files may be gigabytes). */
export async function digestFile(path: string): Promise<{ digest: string; size: number }> {
  const h = new Hasher();
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return { digest: h.digest(), size: h.size };
}

/** The error for content whose digest is not the one it was asked for by. */
export function digestMismatch(what: string, want: string, got: string): VirtusError {
  return new VirtusError('DIGEST_MISMATCH', `${what}: digest mismatch: expected ${want}, got ${got}; refused (the content was changed or corrupted)`);
}
