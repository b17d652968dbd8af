/**
 * Decompressing qcow2 compressed clusters (qcow2.txt "Compressed Clusters Descriptor" and
 * header field compression_type). zlib images hold raw deflate streams (no zlib header);
 * zstd images hold one zstd frame per cluster. In both, the bytes handed over run to the end
 * of the last 512-byte sector, so they may carry the start of the next compressed cluster:
 * decompression stops once a whole cluster has been produced.
 *
 * fflate and fzstd are small pure-JavaScript decoders that run in browsers as well.
 */
import { deflateSync, inflateSync } from 'fflate';
import { decompress as zstdDecompress } from 'fzstd';
import { VirtusError } from '../../util/errors.ts';
import type { CompressionType } from './header.ts';

/** Decompresses one cluster's worth of `data` into `out` (exactly one cluster long). */
export function decompressCluster(type: CompressionType, data: Uint8Array, out: Uint8Array, where: string): void {
  let produced: Uint8Array;
  try {
    produced = type === 'zlib' ? inflateSync(data, { out }) : zstdDecompress(data.subarray(0, zstdFrameLength(data)), out);
  } catch (e) {
    throw new VirtusError('QCOW2_COMPRESSED', `${where}: bad ${type} data in a compressed cluster (${(e as Error).message})`);
  }
  if (produced.length !== out.length) {
    throw new VirtusError('QCOW2_COMPRESSED', `${where}: compressed cluster holds ${produced.length} bytes, not ${out.length}`);
  }
  if (produced.buffer !== out.buffer || produced.byteOffset !== out.byteOffset) out.set(produced);
}

/**
 * Compresses one cluster for a zlib-type image: a raw deflate stream, as QEMU writes them.
 * (virtus has no zstd compressor; zstd images are only read.)
 */
export function compressCluster(type: CompressionType, data: Uint8Array, where: string): Uint8Array {
  if (type !== 'zlib') throw new VirtusError('NOT_SUPPORTED', `${where}: virtus compresses clusters with zlib only (the image says ${type})`);
  return deflateSync(data, { level: 6 });
}

/**
 * The length of the zstd frame at the start of `d` (RFC 8878 section 3.1.1), walking the
 * block headers; so trailing bytes of the next cluster are not mistaken for another frame.
 */
export function zstdFrameLength(d: Uint8Array): number {
  const bad = (): never => {
    throw new Error('not a zstd frame');
  };
  if (d.length < 6 || d[0] !== 0x28 || d[1] !== 0xb5 || d[2] !== 0x2f || d[3] !== 0xfd) bad();
  const fhd = d[4]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  const dictFlag = fhd & 3;
  let at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][dictFlag]!;
  at += fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!;
  for (;;) {
    if (at + 3 > d.length) bad();
    const bh = d[at]! | (d[at + 1]! << 8) | (d[at + 2]! << 16);
    const last = bh & 1;
    const type = (bh >> 1) & 3;
    const size = bh >>> 3;
    at += 3 + (type === 1 ? 1 : type === 3 ? bad() : size);
    if (last) break;
  }
  at += checksum ? 4 : 0;
  if (at > d.length) bad();
  return at;
}
