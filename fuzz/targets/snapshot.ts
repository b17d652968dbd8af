/**
 * Snapshot files and migration streams, through the VMM's own restore and receive paths
 * (vmm/create.ts): the records, the machine's shape, the boot images, RAM and every device's
 * saved state. Seeds are real snapshots of a small running machine with a disk, its records
 * stored undeflated and every record's checksum made right again after mutation, so that
 * mutated inputs get past the framing into the JSON, the shape and the device states.
 */
import { encodeSnapshot } from '../../src/machine/snapshot.ts';
import { encodeRecord, fileHeader, FILE_HEADER, RECORD_HEADER, RecordParser, unpack, useCodec, jsCodec } from '../../src/machine/snapshot-format.ts';
import { MemoryHostFile } from '../../src/storage/host-file.ts';
import { RawBackend } from '../../src/storage/raw.ts';
import { createVm, receiveVm, restoreVm } from '../../src/vmm/create.ts';
import type { VmHost } from '../../src/vmm/host.ts';
import { shapeOf, type Resources } from '../../src/vmm/shape.ts';
import { parseMachineSpec } from '../../src/vmm/spec.ts';
import type { FuzzTarget } from '../harness.ts';
import { tinyElf } from './kernel.ts';

const DISK = 64 * 1024;

function host(): VmHost {
  return {
    // Macrotask turns, so a machine that runs can never starve the event loop.
    runner: { yield: () => new Promise((r) => setImmediate(r)), sleep: () => new Promise((r) => setImmediate(r)), wake() {} },
    readFile: () => tinyElf(),
    openDisk: () => ({ backend: new RawBackend(new MemoryHostFile('disk.img', new Uint8Array(DISK))), close() {} }),
    warn() {},
  };
}

const spec = parseMachineSpec({
  memory: 4 << 20,
  deterministic: true,
  engine: 'interp',
  boot: { mode: 'bare', kernel: 'prog.elf', append: 'console=ttyS0' },
  devices: { disks: [{ file: 'disk.img', serial: 'fuzz' }], console: 'virtio' },
});
const given: Resources = { disks: spec.devices.disks, shares: [], nics: [], engine: 'interp' };
const names = { disk: '--drive', share: '--share', nic: '--nic', memory: '--memory' };

/** The records of a snapshot or stream, re-encoded undeflated. */
function undeflated(parts: Uint8Array[], magic: string): Uint8Array {
  const p = new RecordParser('seed');
  for (const x of parts.slice(1)) p.push(x);
  const out: Uint8Array[] = [fileHeader(magic)];
  for (let f = p.next(); f; f = p.next()) out.push(encodeRecord(f.type, f.arg, unpack(f, 'seed'), false));
  return concat(out);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Makes every record's checksum right again (as far as the lengths let the records be found), records from `from` on. */
export function fixChecksums(b: Uint8Array, from = FILE_HEADER): Uint8Array {
  const out = b.slice();
  const v = new DataView(out.buffer);
  for (let at = from; at + RECORD_HEADER <= out.length; ) {
    const stored = v.getUint32(at + 12, true);
    const end = at + RECORD_HEADER + stored;
    if (end > out.length) break;
    // encodeRecord computes the checksum over the first 16 header bytes and the stored payload.
    const rec = encodeRecord(out[at]!, v.getUint32(at + 4, true), out.subarray(at + RECORD_HEADER, end), false);
    v.setUint32(at + 16, new DataView(rec.buffer).getUint32(16, true), true);
    // The rebuilt header has deflate off; keep the input's flags and lengths as they were.
    at = end;
  }
  return out;
}

async function seeds(): Promise<Uint8Array[]> {
  useCodec(jsCodec);
  const vm = await createVm(spec, host(), { maxInsns: 5000 });
  await vm.handle({ type: 'start' });
  await vm.stopped().catch(() => {});
  const parts = encodeSnapshot(vm.board, shapeOf(spec, []));
  return [undeflated(parts, 'VIRTSNAP'), undeflated(parts, 'VIRTMIGR')];
}

async function run(input: Uint8Array): Promise<void> {
  const bytes = fixChecksums(input);
  const magic = new TextDecoder('latin1').decode(bytes.subarray(0, 8));
  if (magic === 'VIRTMIGR') {
    let answered = false;
    const link = {
      chunks: (async function* () {
        for (let at = 0; at < bytes.length; at += 4096) yield bytes.subarray(at, at + 4096);
      })(),
      answer: () => void (answered = true),
    };
    try {
      const { vm } = await receiveVm(link, given, names, host(), { maxInsns: 0 });
      await vm.handle({ type: 'quit' });
    } finally {
      if (!answered) throw new Error('the target gave the source no answer');
    }
    return;
  }
  const vm = await restoreVm(bytes, 'fuzz', given, names, host(), { maxInsns: 0 });
  await vm.handle({ type: 'quit' });
}

export const target: FuzzTarget = {
  name: 'snapshot',
  seeds,
  run,
  maxLength: 8 << 20,
  // Each input builds a machine (a WebAssembly.Memory of 20 MiB): a short share of npm test.
  iterations: 3000,
};

