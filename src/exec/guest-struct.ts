/**
 * The guest structures system calls fill: `struct stat` (asm-generic/stat.h, 128 bytes on
 * riscv64), `struct statx` (uapi/linux/stat.h), `struct linux_dirent64`, `struct timespec`.
 */
import type { ExecDirent, ExecStat } from './host.ts';

const NS = 1_000_000_000n;

/** `struct stat` as riscv64 lays it out. */
export function statBytes(st: ExecStat): Uint8Array {
  const b = new Uint8Array(128);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, st.dev, true);
  v.setBigUint64(8, st.ino, true);
  v.setUint32(16, st.mode, true);
  v.setUint32(20, st.nlink, true);
  v.setUint32(24, st.uid, true);
  v.setUint32(28, st.gid, true);
  v.setBigUint64(32, st.rdev, true);
  v.setBigInt64(48, st.size, true);
  v.setInt32(56, st.blksize, true);
  v.setBigInt64(64, st.blocks, true);
  [st.atimeNs, st.mtimeNs, st.ctimeNs].forEach((t, i) => {
    v.setBigInt64(72 + 16 * i, t / NS, true);
    v.setBigUint64(80 + 16 * i, t % NS, true);
  });
  return b;
}

/** `struct statx` (256 bytes) with the basic fields (STATX_BASIC_STATS) filled. */
export function statxBytes(st: ExecStat): Uint8Array {
  const b = new Uint8Array(256);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x7ff, true); // stx_mask: STATX_BASIC_STATS
  v.setUint32(4, st.blksize, true);
  v.setUint32(16, st.nlink, true);
  v.setUint32(20, st.uid, true);
  v.setUint32(24, st.gid, true);
  v.setUint16(28, st.mode, true);
  v.setBigUint64(32, st.ino, true);
  v.setBigUint64(40, st.size, true);
  v.setBigUint64(48, st.blocks, true);
  // stx_atime @64, stx_btime @80 (left zero: not in the mask), stx_ctime @96, stx_mtime @112
  for (const [off, t] of [[64, st.atimeNs], [96, st.ctimeNs], [112, st.mtimeNs]] as const) {
    v.setBigInt64(off, t / NS, true);
    v.setUint32(off + 8, Number(t % NS), true);
  }
  v.setUint32(128, Number((st.rdev >> 8n) & 0xfffn), true);
  v.setUint32(132, Number(st.rdev & 0xffn), true);
  v.setUint32(136, Number((st.dev >> 8n) & 0xfffn), true);
  v.setUint32(140, Number(st.dev & 0xffn), true);
  return b;
}

/** Encodes directory entries from `start` into at most `room` bytes; returns the bytes and how many fit. */
export function direntBytes(list: ExecDirent[], start: number, room: number): [Uint8Array, number] {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let used = 0;
  let i = start;
  for (; i < list.length; i++) {
    const name = enc.encode(list[i]!.name);
    const reclen = Math.ceil((19 + name.length + 1) / 8) * 8;
    if (used + reclen > room) break;
    const e = new Uint8Array(reclen);
    const v = new DataView(e.buffer);
    v.setBigUint64(0, list[i]!.ino, true);
    v.setBigInt64(8, BigInt(i + 1), true);
    v.setUint16(16, reclen, true);
    e[18] = list[i]!.type;
    e.set(name, 19);
    parts.push(e);
    used += reclen;
  }
  const out = new Uint8Array(used);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return [out, i - start];
}

/** `struct timespec` (two 64-bit fields) from nanoseconds. */
export function timespecBytes(ns: bigint): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setBigInt64(0, ns / NS, true);
  v.setBigInt64(8, ns % NS, true);
  return b;
}

/** Reads a little-endian 64-bit word of `b` at `o` as a Number (signed). */
export function i64At(b: Uint8Array, o: number): number {
  return Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigInt64(o, true));
}
