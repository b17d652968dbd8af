/**
 * The interpreter's decode cache under pressure: a program whose code spans more pages than the
 * cache has slots, so slots pass from page to page (hart.ts decodedSlot). Its output must be
 * QEMU's on the same board.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DECODED_SLOTS } from '../../src/cpu/hart.ts';
import { VirtBoard } from '../../src/machine/virt.ts';
import { buildGuest, requireTool } from '../support/toolchain.ts';

const elf = (): string => buildGuest('decode-cache', [join(import.meta.dirname, 'decode-cache.S')]);

function run(path: string, engine: 'interp' | 'jit'): { out: string; pages: number } {
  let out = '';
  const board = new VirtBoard({
    ramSize: 64 << 20, deterministic: true, engine, jit: { threshold: 50 },
    console: (b) => (out += Buffer.from(b).toString('latin1')),
  });
  board.boot({ kernel: new Uint8Array(readFileSync(path)), kernelName: path, firmware: 'none' });
  const m = board.machine;
  while (!m.exit && m.instret() < 50_000_000) m.slice(10_000);
  assert.equal(m.exit?.reason, 'poweroff', `${engine}: the program did not finish`);
  const d = m.harts[0]!.decoded;
  return { out, pages: d.owner.filter((p) => p >= 0).length };
}

describe('the decode cache', () => {
  it('code on more pages than it has slots runs as on QEMU, slots reused in turn', () => {
    requireTool('qemu-system-riscv64');
    const path = elf();
    const q = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-bios', 'none', '-kernel', path, '-nographic', '-monitor', 'none', '-serial', 'stdio'], {
      encoding: 'utf8', timeout: 60_000, input: '',
    });
    assert.equal(q.status, 0, q.stderr);
    assert.match(q.stdout, /^[0-9a-f]{16}\n$/);
    const interp = run(path, 'interp');
    assert.equal(interp.out, q.stdout);
    assert.equal(interp.pages, DECODED_SLOTS, 'every slot is taken');
    assert.equal(run(path, 'jit').out, q.stdout);
  });
});
