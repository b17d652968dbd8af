/**
 * The qcow2 header and header extensions (QEMU docs/interop/qcow2.txt, "Header" and
 * "Header extensions"). Everything read from the file is untrusted: each field is checked
 * and a bad one becomes a VirtusError naming the file and the field.
 */
import { VirtusError } from '../../util/errors.ts';
import { readExact, type HostFile } from '../host-file.ts';
import { checkSnapshots } from './snapshots.ts';

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

/** Byte offsets of header fields virtus rewrites in place (qcow2.txt "Header"). */
export const HDR = {
  refcountTableOffset: 48,
  refcountTableClusters: 56,
  incompatibleFeatures: 72,
  autoclearFeatures: 88,
} as const;

/** Incompatible feature bits (qcow2.txt, header bytes 72-79). */
export const INCOMPAT = { dirty: 0n, corrupt: 1n, dataFile: 2n, compression: 3n, extendedL2: 4n } as const;
/** Compatible feature bits (bytes 80-87). */
export const COMPAT = { lazyRefcounts: 0n } as const;
const KNOWN_INCOMPAT = 0b11111n;

/** Header extension types (qcow2.txt "Header extensions"). */
export const EXT = {
  end: 0,
  backingFormat: 0xe2792aca,
  featureNames: 0x6803f857,
  bitmaps: 0x23852875,
  encryption: 0x0537be77,
  dataFile: 0x44415441,
} as const;

/** The names QEMU's feature name table gives the features, by (type, bit). */
export const FEATURE_NAMES: [type: number, bit: number, name: string][] = [
  [0, 0, 'dirty bit'],
  [0, 1, 'corrupt bit'],
  [0, 2, 'external data file'],
  [0, 3, 'compression type'],
  [0, 4, 'extended L2 entries'],
  [1, 0, 'lazy refcounts'],
  [2, 0, 'bitmaps'],
  [2, 1, 'raw external data'],
];

export type CompressionType = 'zlib' | 'zstd';

/** A parsed, validated qcow2 header. */
export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  /** Virtual disk size in bytes. */
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: bigint;
  compatible: bigint;
  autoclear: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: CompressionType;
  backingFile: string | null;
  backingFormat: string | null;
  /** Header extensions in file order (unknown ones too), for info and checks. */
  extensions: { type: number; data: Uint8Array }[];
  /** Feature names from the image's own feature name table, keyed "type:bit". */
  featureNames: Map<string, string>;
}

const u64 = (dv: DataView, at: number): bigint => dv.getBigUint64(at);

function num(file: string, field: string, v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(file, `${field} ${v} is too large`);
  return Number(v);
}

function corrupt(file: string, what: string): VirtusError {
  return new VirtusError('QCOW2_BAD_HEADER', `${file}: not a valid qcow2 image: ${what}`);
}

/** True when `head` (at least 4 bytes) starts with the qcow2 magic. */
export function isQcow2(head: Uint8Array): boolean {
  return head.length >= 4 && new DataView(head.buffer, head.byteOffset, 4).getUint32(0) === QCOW2_MAGIC;
}

/**
 * Implementation limits, as QEMU's (block/qcow2.h): larger tables are refused before anything
 * is allocated for them.
 */
export const LIMITS = {
  /** Bytes of the active L1 table (QCOW_MAX_L1_SIZE). */
  l1Bytes: 32 << 20,
  /** Bytes of the refcount table (QCOW_MAX_REFTABLE_SIZE). */
  refcountTableBytes: 8 << 20,
  /** Internal snapshots (QCOW_MAX_SNAPSHOTS). */
  snapshots: 65536,
  /** A backing file name (qcow2.txt: "Must not be longer than 1023 bytes"). */
  backingName: 1023,
  /** The backing format extension (QEMU keeps the name in 16 bytes). */
  backingFormat: 15,
} as const;

/** Reads and validates the header of the qcow2 image in `file` against the file's size. */
export function readHeader(file: HostFile): Qcow2Header {
  const name = file.name;
  const fileSize = file.size();
  const first = new Uint8Array(512);
  const got = file.read(0, first);
  if (got < 72 || !isQcow2(first)) throw corrupt(name, 'no qcow2 header');
  const dv = new DataView(first.buffer);
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3) {
    throw new VirtusError('QCOW2_VERSION', `${name}: qcow2 version ${version} is not supported (only 2 and 3)`);
  }
  const clusterBits = dv.getUint32(20);
  // qcow2.txt: cluster_bits >= 9; QEMU's implementation limit is 2 MiB clusters.
  if (clusterBits < 9 || clusterBits > 21) throw corrupt(name, `cluster_bits ${clusterBits} is outside 9..21`);
  const clusterSize = 2 ** clusterBits;
  const cryptMethod = dv.getUint32(32);
  if (cryptMethod !== 0) {
    throw new VirtusError('QCOW2_ENCRYPTED', `${name}: encrypted qcow2 images (crypt_method ${cryptMethod}) are not supported`);
  }
  const h: Qcow2Header = {
    version,
    clusterBits,
    size: num(name, 'size', u64(dv, 24)),
    l1Size: dv.getUint32(36),
    l1TableOffset: num(name, 'l1_table_offset', u64(dv, 40)),
    refcountTableOffset: num(name, 'refcount_table_offset', u64(dv, 48)),
    refcountTableClusters: dv.getUint32(56),
    nbSnapshots: dv.getUint32(60),
    snapshotsOffset: num(name, 'snapshots_offset', u64(dv, 64)),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    refcountOrder: 4,
    headerLength: 72,
    compressionType: 'zlib',
    backingFile: null,
    backingFormat: null,
    extensions: [],
    featureNames: new Map(),
  };
  if (version === 3) {
    if (got < 104) throw corrupt(name, 'version 3 header is cut short');
    h.incompatible = u64(dv, 72);
    h.compatible = u64(dv, 80);
    h.autoclear = u64(dv, 88);
    h.refcountOrder = dv.getUint32(96);
    h.headerLength = dv.getUint32(100);
    if (h.headerLength < 104 || h.headerLength % 8 !== 0 || h.headerLength > clusterSize) {
      throw corrupt(name, `header_length ${h.headerLength} is invalid`);
    }
    if (h.refcountOrder > 6) throw corrupt(name, `refcount_order ${h.refcountOrder} is above 6`);
    const rawType = h.headerLength > 104 ? first[104]! : 0;
    const typeBit = (h.incompatible >> INCOMPAT.compression) & 1n;
    if (typeBit === 1n && rawType === 0) throw corrupt(name, 'compression type bit set but compression_type is zlib');
    if (typeBit === 0n && rawType !== 0) throw corrupt(name, 'compression_type set without the compression type bit');
    if (rawType > 1) {
      throw new VirtusError('QCOW2_COMPRESSION', `${name}: unknown compression type ${rawType} (virtus knows zlib and zstd)`);
    }
    h.compressionType = rawType === 1 ? 'zstd' : 'zlib';
  }
  checkTables(name, h, fileSize);

  // QEMU: the name lies in the first cluster, and header extensions end where it starts.
  const backingOffset = num(name, 'backing_file_offset', u64(dv, 8));
  const nameLength = dv.getUint32(16);
  if (backingOffset > clusterSize) throw corrupt(name, `backing_file_offset ${backingOffset} lies outside the first cluster`);
  if (backingOffset !== 0 && backingOffset < h.headerLength) throw corrupt(name, `backing_file_offset ${backingOffset} lies inside the header`);
  if (backingOffset !== 0 && (nameLength > LIMITS.backingName || backingOffset + nameLength > clusterSize)) {
    throw corrupt(name, `backing_file_size ${nameLength} is too long (at most ${LIMITS.backingName} bytes, within the first cluster)`);
  }
  readExtensions(file, h, backingOffset !== 0 ? backingOffset : clusterSize);
  checkFeatures(name, h);
  if (backingOffset !== 0) {
    const buf = new Uint8Array(nameLength);
    readExact(file, backingOffset, buf, 'backing file name');
    h.backingFile = new TextDecoder().decode(buf);
  }
  if (h.nbSnapshots > 0) checkSnapshots(file, h);
  return h;
}

/**
 * The L1 table, the refcount table and the snapshot table must be cluster-aligned, within
 * QEMU's size limits and inside the file, all before anything is allocated for them.
 */
function checkTables(name: string, h: Qcow2Header, fileSize: number): void {
  const cs = 2 ** h.clusterBits;
  const inFile = (field: string, offset: number, bytes: number, what: string): void => {
    if (offset % cs !== 0) throw corrupt(name, `${field} ${offset} is not cluster-aligned`);
    if (bytes > 0 && offset + bytes > fileSize) {
      throw corrupt(name, `${field} ${offset}: the ${what} (${bytes} bytes) lies beyond the end of the file (${fileSize} bytes)`);
    }
  };
  // The L1 table covers the virtual size (qcow2.txt: l1_size); QEMU's limit is 32 MiB.
  const l2Entries = cs / (hasBit(h.incompatible, INCOMPAT.extendedL2) ? 16 : 8);
  const needL1 = Math.ceil(h.size / (cs * l2Entries));
  if (h.l1Size * 8 > LIMITS.l1Bytes) throw corrupt(name, `l1_size ${h.l1Size}: the L1 table would be larger than 32 MiB`);
  if (needL1 * 8 > LIMITS.l1Bytes) throw corrupt(name, `size ${h.size} is too large for ${cs}-byte clusters (its L1 table would exceed 32 MiB)`);
  if (h.l1Size < needL1) throw corrupt(name, `l1_size ${h.l1Size} is too small for the virtual size (${needL1} entries needed)`);
  inFile('l1_table_offset', h.l1TableOffset, h.l1Size * 8, 'L1 table');
  if (h.refcountTableClusters === 0) throw corrupt(name, 'refcount_table_clusters is 0 (the refcount table is empty)');
  if (h.refcountTableClusters * cs > LIMITS.refcountTableBytes) {
    throw corrupt(name, `refcount_table_clusters ${h.refcountTableClusters}: the refcount table would be larger than 8 MiB`);
  }
  inFile('refcount_table_offset', h.refcountTableOffset, h.refcountTableClusters * cs, 'refcount table');
  if (h.nbSnapshots > LIMITS.snapshots) throw corrupt(name, `nb_snapshots ${h.nbSnapshots} is above ${LIMITS.snapshots}`);
  // Each snapshot header is at least 40 bytes (qcow2.txt "Snapshot table").
  inFile('snapshots_offset', h.snapshotsOffset, h.nbSnapshots * 40, 'snapshot table');
}

function readExtensions(file: HostFile, h: Qcow2Header, end: number): void {
  const area = new Uint8Array(Math.max(0, end - h.headerLength));
  file.read(h.headerLength, area);
  const dv = new DataView(area.buffer);
  let at = 0;
  while (at + 8 <= area.length) {
    const type = dv.getUint32(at);
    const len = dv.getUint32(at + 4);
    if (type === EXT.end) return;
    if (at + 8 + len > area.length) throw corrupt(file.name, `header extension 0x${type.toString(16)} at offset ${h.headerLength + at} is ${len} bytes long and overruns the header area`);
    const data = area.slice(at + 8, at + 8 + len);
    h.extensions.push({ type, data });
    if (type === EXT.backingFormat) {
      if (len > LIMITS.backingFormat) throw corrupt(file.name, `the backing format extension is ${len} bytes long (at most ${LIMITS.backingFormat})`);
      h.backingFormat = new TextDecoder().decode(data);
    }
    if (type === EXT.featureNames) {
      for (let i = 0; i + 48 <= data.length; i += 48) {
        const raw = data.subarray(i + 2, i + 48);
        const end = raw.indexOf(0);
        h.featureNames.set(`${data[i]}:${data[i + 1]}`, new TextDecoder().decode(end < 0 ? raw : raw.subarray(0, end)));
      }
    }
    at += 8 + Math.ceil(len / 8) * 8;
  }
}

/**
 * qcow2.txt: "An implementation must fail to open an image if an unknown [incompatible] bit
 * is set". External data files are known but not supported, so they are refused too.
 */
function checkFeatures(name: string, h: Qcow2Header): void {
  const unknown = h.incompatible & ~KNOWN_INCOMPAT;
  if (unknown !== 0n) {
    const bits: string[] = [];
    for (let b = 0; b < 64; b++) {
      if ((unknown >> BigInt(b)) & 1n) {
        const known = h.featureNames.get(`0:${b}`);
        bits.push(known ? `bit ${b} ("${known}")` : `bit ${b}`);
      }
    }
    throw new VirtusError('QCOW2_FEATURES', `${name}: unsupported incompatible qcow2 features: ${bits.join(', ')}`);
  }
  if (hasBit(h.incompatible, INCOMPAT.dataFile)) {
    throw new VirtusError('QCOW2_FEATURES', `${name}: qcow2 images with an external data file are not supported`);
  }
  if (hasBit(h.incompatible, INCOMPAT.extendedL2) && h.clusterBits < 14) {
    throw corrupt(name, 'extended L2 entries need clusters of at least 16 KiB');
  }
}

/** True when `bit` is set in `mask`. */
export function hasBit(mask: bigint, bit: bigint): boolean {
  return ((mask >> bit) & 1n) === 1n;
}

/** Options for laying out a new image's first cluster. */
export interface NewHeader {
  version: 2 | 3;
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountOrder: number;
  compressionType: CompressionType;
  lazyRefcounts: boolean;
  backingFile: string | null;
  backingFormat: string | null;
}

/**
 * Encodes a new image's first cluster: header, extensions (backing format, feature name
 * table), end marker, then the backing file name in the remaining space (qcow2.txt).
 */
export function encodeHeader(n: NewHeader): Uint8Array {
  const clusterSize = 2 ** n.clusterBits;
  const out = new Uint8Array(clusterSize);
  const dv = new DataView(out.buffer);
  const enc = new TextEncoder();
  dv.setUint32(0, QCOW2_MAGIC);
  dv.setUint32(4, n.version);
  dv.setUint32(20, n.clusterBits);
  dv.setBigUint64(24, BigInt(n.size));
  dv.setUint32(36, n.l1Size);
  dv.setBigUint64(40, BigInt(n.l1TableOffset));
  dv.setBigUint64(48, BigInt(n.refcountTableOffset));
  dv.setUint32(56, n.refcountTableClusters);
  // QEMU writes 112-byte v3 headers: compression_type at 104, zero padding to a multiple of 8.
  let at = 72;
  if (n.version === 3) {
    const zstd = n.compressionType === 'zstd';
    dv.setBigUint64(72, zstd ? 1n << INCOMPAT.compression : 0n);
    dv.setBigUint64(80, n.lazyRefcounts ? 1n << COMPAT.lazyRefcounts : 0n);
    dv.setUint32(96, n.refcountOrder);
    dv.setUint32(100, 112);
    out[104] = zstd ? 1 : 0;
    at = 112;
  }
  const ext = (type: number, data: Uint8Array): void => {
    dv.setUint32(at, type);
    dv.setUint32(at + 4, data.length);
    out.set(data, at + 8);
    at += 8 + Math.ceil(data.length / 8) * 8;
  };
  if (n.backingFile !== null && n.backingFormat !== null) ext(EXT.backingFormat, enc.encode(n.backingFormat));
  // The feature name table is optional: like qemu-img, leave it out when it does not fit
  // in the first cluster together with the backing file name (512-byte clusters).
  const nameLength = n.backingFile !== null ? enc.encode(n.backingFile).length : 0;
  if (n.version === 3 && at + 8 + 48 * FEATURE_NAMES.length + 8 + nameLength <= clusterSize) {
    const table = new Uint8Array(48 * FEATURE_NAMES.length);
    FEATURE_NAMES.forEach(([type, bit, name], i) => {
      table[i * 48] = type;
      table[i * 48 + 1] = bit;
      table.set(enc.encode(name), i * 48 + 2);
    });
    ext(EXT.featureNames, table);
  }
  at += 8; // end-of-extensions marker (type 0, length 0)
  if (n.backingFile !== null) {
    const name = enc.encode(n.backingFile);
    if (name.length > 1023) throw new VirtusError('BAD_BACKING', `backing file name is longer than 1023 bytes: ${n.backingFile}`);
    if (at + name.length > clusterSize) throw new VirtusError('BAD_BACKING', 'backing file name does not fit in the first cluster');
    dv.setBigUint64(8, BigInt(at));
    dv.setUint32(16, name.length);
    out.set(name, at);
  }
  return out;
}

/**
 * What, in the image whose first bytes are `head`, names another file: a backing file
 * (header bytes 8-19) or an external data file (incompatible bit 2); null when the image is
 * self-contained (or not qcow2 at all). Used on machine images, whose disks must never
 * make virtus open a host file that the image chose.
 */
export function fileReferences(head: Uint8Array): string | null {
  if (head.length < 72 || !isQcow2(head)) return null;
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const offset = dv.getBigUint64(8);
  if (offset !== 0n) {
    const length = Math.min(dv.getUint32(16), 1023);
    const at = Number(offset);
    const name = at + length <= head.length ? new TextDecoder().decode(head.subarray(at, at + length)) : null;
    return name !== null ? `a backing file (${JSON.stringify(name)})` : 'a backing file';
  }
  if (dv.getUint32(4) >= 3 && head.length >= 80 && hasBit(dv.getBigUint64(72), INCOMPAT.dataFile)) return 'an external data file';
  return null;
}
