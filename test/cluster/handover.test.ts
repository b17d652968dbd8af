/**
 * The hand-over of a machine's disks in a live migration (NodeVmHost.openDisk: inactivate lets
 * go of the image locks, activate takes them back), for a disk whose overlay was created when it
 * was opened — every cluster machine's first start. Creating the overlay opens the base image
 * once more and closes it; the hand-over must skip that closed file (it threw "file is closed",
 * and every such migration failed). The reference is QEMU: `qemu-img info` is refused while
 * virtus holds the overlay's write lock and allowed once it is handed over.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NodeVmHost } from '../../src/host/node/vm-host.ts';
import { parseMachineSpec } from '../../src/vmm/spec.ts';
import { requireTool } from '../support/toolchain.ts';
import { scratch } from './support.ts';

const info = (p: string) => spawnSync('qemu-img', ['info', p], { encoding: 'utf8' });

describe('cluster: disk hand-over', () => {
  it('hands over and takes back a disk whose overlay it just created', () => {
    requireTool('qemu-img');
    const s = scratch('virtus-handover-');
    try {
      writeFileSync(s.path('base.img'), Buffer.alloc(1 << 20));
      const spec = parseMachineSpec({ boot: { mode: 'bare', kernel: '/k' }, devices: { disks: [{ file: s.path('base.img'), format: 'raw', overlay: s.path('o.qcow2') }] } });
      const d = new NodeVmHost().openDisk(spec.devices.disks[0]!);
      try {
        assert.match(info(s.path('o.qcow2')).stderr, /lock/, 'the overlay is locked while the machine has it');
        d.inactivate!();
        const free = info(s.path('o.qcow2'));
        assert.equal(free.status, 0, free.stderr);
        d.activate!();
        assert.match(info(s.path('o.qcow2')).stderr, /lock/, 'and locked again once taken back');
      } finally {
        d.close();
      }
    } finally {
      s.cleanup();
    }
  });
});
