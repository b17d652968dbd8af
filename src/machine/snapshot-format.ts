/**
 * The byte format shared by snapshot files and migration streams (docs/snapshots.md): a
 * 16-byte header (an 8-byte magic, the format version, reserved flags), then records. A record
 * is a 20-byte header (type, flags, an argument, raw and stored lengths, the CRC-32 of the
 * header and the payload as stored) and its payload, raw-deflated (RFC 1951) when that makes
 * it smaller. The compressor and checksum come from a Codec: pure JavaScript by default
 * (fflate), the host's native zlib where there is one (useCodec), byte-compatible either way.
 * Everything read here is untrusted: lengths are bounded before anything is allocated, every
 * record's checksum is verified, and every failure is one VirtusError('BAD_SNAPSHOT') naming
 * what is wrong.
 */
import { deflateSync, inflateSync } from 'fflate';
import { VirtusError } from '../util/errors.ts';

/** The format version this virtus writes and the newest it reads. */
export const FORMAT_VERSION = 2;
export const FILE_HEADER = 16;
export const RECORD_HEADER = 20;

/** Record types. */
export const Rec = {
  /** The machine's configuration (JSON): what a restore must build before anything else. */
  Config: 1,
  /** Every hart and device (JSON). */
  State: 2,
  /** RAM pages: arg = first page; the payload is whole 4 KiB pages. */
  Ram: 3,
  /** RAM pages of zeros: arg = first page; the payload is a u32 page count. */
  Zero: 4,
  /** A migration round begins (arg = round number); no payload. */
  Round: 5,
  /** A piece of a boot image (arg = 0 kernel, 1 initrd, 2 firmware), in order. */
  Boot: 6,
  /** Migration only: pages as deltas against what the target holds (migrate-ram.ts). */
  Delta: 7,
  /** Migration only: the switch to post-copy; the payload is the bitmap of pages still to come. */
  Postcopy: 8,
  /** The last record. */
  End: 15,
} as const;

const NAMES: Record<number, string> = { 1: 'config', 2: 'state', 3: 'RAM', 4: 'zero-page', 5: 'round', 6: 'boot', 7: 'delta', 8: 'post-copy', 15: 'end' };
const F_DEFLATE = 1;
/** Largest raw payload accepted (a RAM record holds at most 1 MiB; JSON state is far smaller). */
const MAX_RAW = 64 << 20;

/** One record as read: its stored bytes still packed. */
export interface Frame {
  type: number;
  arg: number;
  flags: number;
  raw: number;
  crc: number;
  /** The record's first 16 header bytes (covered by the checksum). */
  head: Uint8Array;
  data: Uint8Array;
}

/** Fails a restore or an incoming migration with one clear line. */
export function bad(message: string): never {
  throw new VirtusError('BAD_SNAPSHOT', message);
}

/** Compression and checksum of record payloads. */
export interface Codec {
  /** Raw deflate (RFC 1951) of `raw`. */
  deflate(raw: Uint8Array): Uint8Array;
  /** Inflates raw-deflate `data` into `out`; returns the part of `out` written (throws on bad data). */
  inflate(data: Uint8Array, out: Uint8Array): Uint8Array;
  /** CRC-32 (ISO-HDLC, as zlib's crc32), continuing from `value` (the CRC of what came before). */
  crc32(data: Uint8Array, value?: number): number;
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** The portable codec: fflate and a table-driven CRC-32. */
export const jsCodec: Codec = {
  deflate: (raw) => deflateSync(raw, { level: 1 }),
  inflate: (data, out) => inflateSync(data, { out }),
  crc32(d, value = 0) {
    let c = ~value;
    for (let i = 0; i < d.length; i++) c = CRC_TABLE[(c ^ d[i]!) & 0xff]! ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  },
};

let codec: Codec = jsCodec;

/** Makes snapshots and migrations use `c` (a host's native zlib is several times faster). */
export function useCodec(c: Codec): void {
  codec = c;
}

/** The 16-byte header that opens a file or stream with `magic` (8 ASCII characters). */
export function fileHeader(magic: string): Uint8Array {
  const out = new Uint8Array(FILE_HEADER);
  out.set(new TextEncoder().encode(magic));
  new DataView(out.buffer).setUint32(8, FORMAT_VERSION, true);
  return out;
}

/** Checks a header read from a file or stream; `what` names it in errors. */
export function checkFileHeader(h: Uint8Array, magic: string, what: string): void {
  if (h.length < FILE_HEADER) bad(`${what} is truncated: it ends inside its ${FILE_HEADER}-byte header`);
  const got = new TextDecoder('latin1').decode(h.subarray(0, 8));
  if (got !== magic) bad(`${what} is not a virtus ${magic === 'VIRTSNAP' ? 'snapshot' : 'migration stream'} (bad magic)`);
  const v = new DataView(h.buffer, h.byteOffset, FILE_HEADER);
  const version = v.getUint32(8, true);
  if (version > FORMAT_VERSION) bad(`${what} has format version ${version}, newer than this virtus reads (${FORMAT_VERSION}): use a newer virtus`);
  if (version === 0) bad(`${what} is corrupt: format version 0`);
  if (version < FORMAT_VERSION) {
    bad(`${what} has format version ${version}, from an older virtus whose snapshots name host files; this virtus reads version ${FORMAT_VERSION} only: continue it with the virtus that saved it`);
  }
  if (v.getUint32(12, true) !== 0) bad(`${what} is corrupt: reserved header flags are set`);
}

/** Packs one record; the payload is deflated when that makes it smaller. */
export function encodeRecord(type: number, arg: number, raw: Uint8Array, deflate = true): Uint8Array {
  let stored = raw;
  let flags = 0;
  if (deflate && raw.length > 0) {
    const d = codec.deflate(raw);
    if (d.length < raw.length) {
      stored = d;
      flags = F_DEFLATE;
    }
  }
  const out = new Uint8Array(RECORD_HEADER + stored.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, type);
  v.setUint8(1, flags);
  v.setUint32(4, arg >>> 0, true);
  v.setUint32(8, raw.length, true);
  v.setUint32(12, stored.length, true);
  v.setUint32(16, recordCrc(out, stored), true);
  out.set(stored, RECORD_HEADER);
  return out;
}

/**
 * The checksum of a record: its header's first 16 bytes (type, flags, arg, lengths), then the
 * payload as stored. Over the stored bytes, not the inflated ones: a damaged bit that DEFLATE
 * ignores (the padding after the final block) would otherwise pass.
 */
function recordCrc(header: Uint8Array, stored: Uint8Array): number {
  return codec.crc32(stored, codec.crc32(header.subarray(0, 16))) >>> 0;
}

/** A record holding a JSON value. */
export function jsonRecord(type: number, value: unknown): Uint8Array {
  return encodeRecord(type, 0, new TextEncoder().encode(JSON.stringify(value)));
}

/**
 * Splits bytes into records as they arrive (a whole file at once, or a socket's chunks).
 * push() adds bytes; next() returns the next complete record, or null until more arrive.
 */
export class RecordParser {
  /** Bytes received and not yet returned, as they arrived (joined only when a record is whole). */
  private chunks: Uint8Array[] = [];
  private len = 0;
  /** Records returned so far (for messages). */
  count = 0;

  constructor(private readonly what: string) {}

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.len += chunk.length;
  }

  /** Bytes received and not yet returned in a record. */
  get pending(): number {
    return this.len;
  }

  /** The first `n` bytes (n <= pending), joined into the first chunk if they span several. */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const joined = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks.shift()!;
      const k = Math.min(c.length, n - at);
      joined.set(c.subarray(0, k), at);
      at += k;
      if (k < c.length) this.chunks.unshift(c.subarray(k));
    }
    this.chunks.unshift(joined);
    return joined;
  }

  private drop(n: number): void {
    this.len -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      if (c.length > n) {
        this.chunks[0] = c.subarray(n);
        return;
      }
      n -= c.length;
      this.chunks.shift();
    }
  }

  /** Takes `n` bytes if they have arrived. */
  take(n: number): Uint8Array | null {
    if (this.len < n) return null;
    const out = this.peek(n);
    this.drop(n);
    return out;
  }

  next(): Frame | null {
    if (this.len < RECORD_HEADER) return null;
    const h = this.peek(RECORD_HEADER);
    const v = new DataView(h.buffer, h.byteOffset, RECORD_HEADER);
    const type = v.getUint8(0);
    const flags = v.getUint8(1);
    const arg = v.getUint32(4, true);
    const raw = v.getUint32(8, true);
    const stored = v.getUint32(12, true);
    const crc = v.getUint32(16, true);
    const at = `${this.what}: record ${this.count + 1}`;
    if (!NAMES[type]) bad(`${at} has unknown type ${type}: the ${this.what} is corrupt`);
    if (flags & ~F_DEFLATE || v.getUint16(2, true) !== 0) bad(`${at} (${NAMES[type]}) has unknown flags: the ${this.what} is corrupt`);
    if (raw > MAX_RAW) bad(`${at} (${NAMES[type]}) claims ${raw} bytes, more than any record holds: the ${this.what} is corrupt`);
    if (flags & F_DEFLATE ? stored >= raw : stored !== raw) bad(`${at} (${NAMES[type]}) has inconsistent lengths: the ${this.what} is corrupt`);
    if (this.len < RECORD_HEADER + stored) return null;
    const rec = this.take(RECORD_HEADER + stored)!;
    this.count++;
    const head = rec.subarray(0, 16);
    if (recordCrc(head, rec.subarray(RECORD_HEADER)) !== crc) bad(`${at} (${NAMES[type]}) is corrupt: checksum mismatch`);
    return { type, arg, flags, raw, crc, head, data: rec.subarray(RECORD_HEADER) };
  }
}

/** The name of a record type, for messages. */
export function recordName(type: number): string {
  return NAMES[type] ?? `type ${type}`;
}

/**
 * The raw payload of `f` (whose checksum the parser verified), inflated into `out` when given
 * (a RAM window: no copy). `what` names the record in errors.
 */
export function unpack(f: Frame, what: string, out?: Uint8Array): Uint8Array {
  let raw: Uint8Array;
  if (f.flags & F_DEFLATE) {
    try {
      raw = codec.inflate(f.data, out ?? new Uint8Array(f.raw));
    } catch {
      bad(`${what} is corrupt: its compressed data does not inflate`);
    }
    if (raw.length !== f.raw) bad(`${what} is corrupt: it inflates to ${raw.length} bytes, not ${f.raw}`);
  } else {
    raw = f.data;
    if (out) {
      out.set(raw);
      raw = out;
    }
  }
  return raw;
}

/** The JSON value of a Config or State record. */
export function unpackJson(f: Frame, what: string): unknown {
  const text = new TextDecoder().decode(unpack(f, what));
  try {
    return JSON.parse(text);
  } catch {
    bad(`${what} is corrupt: not JSON`);
  }
}
