/**
 * Format probing by magic numbers, as qemu-img probes: qcow2 is read; the other formats
 * qemu-img recognizes by their first bytes are named and refused, so that a VMDK or VHD file
 * is never mistaken for a raw disk (which `image info` would report as raw and `convert` turn
 * into a copy of the container's bytes). A user who means the bytes as they are says
 * format=raw (`-f raw`), as with QEMU.
 */
import type { ImageFormat } from './backend.ts';
import type { HostFile } from './host-file.ts';
import { isQcow2 } from './qcow2/header.ts';

/** How many leading bytes probing looks at (QEMU reads 2 KiB; every magic here lies in the first 512). */
export const PROBE_BYTES = 512;

/** What the first bytes say: a format virtus reads, or the name of one it does not. */
export type Probed = { format: ImageFormat } | { foreign: string };

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** Magic bytes at an offset, per format (each format's specification or QEMU's block/<fmt>.c probe). */
const MAGICS: [name: string, offset: number, bytes: number[]][] = [
  ['VMDK (VMware)', 0, ascii('KDMV')], // hosted sparse extent header
  ['VMDK (VMware, version 3)', 0, ascii('COWD')],
  ['VMDK descriptor (VMware)', 0, ascii('# Disk DescriptorFile')],
  ['VDI (VirtualBox)', 0x40, [0x7f, 0x10, 0xda, 0xbe]], // signature 0xbeda107f, little-endian
  ['VHD (vpc, Virtual PC / Hyper-V)', 0, ascii('conectix')], // dynamic disks: footer copy at the start
  ['VHDX (Hyper-V)', 0, ascii('vhdxfile')],
  ['QED', 0, [0x51, 0x45, 0x44, 0x00]],
  ['LUKS (encrypted)', 0, [...ascii('LUKS'), 0xba, 0xbe]],
  ['Parallels', 0, ascii('WithoutFreeSpace')],
  ['Parallels', 0, ascii('WithouFreSpacExt')],
  ['cloop', 0, ascii('#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0')],
  ['Bochs', 0, ascii('Bochs Virtual HD Image')],
];

function at(head: Uint8Array, offset: number, bytes: number[]): boolean {
  if (head.length < offset + bytes.length) return false;
  return bytes.every((b, i) => head[offset + i] === b);
}

/** The format that the first bytes of an image (`PROBE_BYTES` or fewer) show. */
export function probeBytes(head: Uint8Array): Probed {
  for (const [name, offset, bytes] of MAGICS) if (at(head, offset, bytes)) return { foreign: name };
  return { format: isQcow2(head) ? 'qcow2' : 'raw' };
}

/** Probes the image in `file`. */
export function probeFile(file: HostFile): Probed {
  const head = new Uint8Array(PROBE_BYTES);
  const n = file.read(0, head);
  return probeBytes(head.subarray(0, n));
}
