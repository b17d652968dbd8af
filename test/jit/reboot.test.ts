/**
 * A guest reboot under the translator: the board reloads its images into RAM and resets the
 * hart, and the engine must start again from its power-on state (no region, table slot or
 * jump-cache entry of the previous boot may be reached). The program runs hot code before and
 * after a syscon reboot; QEMU's virt board, running the same program, is the reference.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PAGE_CODE } from '../../src/cpu/hart.ts';
import { VirtBoard } from '../../src/machine/virt.ts';
import { buildGuest, requireTool, runVirtus } from '../support/toolchain.ts';

const elf = (): string => buildGuest('jit-reboot', [join(import.meta.dirname, 'reboot.S')]);

interface BoardRun {
  out: string;
  reboots: number;
  code: number | undefined;
}

/**
 * Runs the program on a virt board with `engine`, restarting it when the guest asks: through
 * VirtBoard.reboot(), or (`restart: 'boot'`) by booting the images again without telling the
 * engine, as any code that resets or restores a hart behind the engine's back does.
 */
function runBoard(path: string, engine: 'jit' | 'interp', o: { threshold?: number; restart?: 'reboot' | 'boot' } = {}): BoardRun & { board: VirtBoard } {
  let out = '';
  const board = new VirtBoard({
    ramSize: 64 << 20, deterministic: true, engine, jit: { threshold: o.threshold ?? 50 },
    console: (b) => (out += Buffer.from(b).toString('latin1')),
  });
  const images = { kernel: new Uint8Array(readFileSync(path)), kernelName: path, firmware: 'none' as const };
  board.boot(images);
  const m = board.machine;
  let reboots = 0;
  while (m.instret() < 20_000_000) {
    m.slice(10_000);
    if (m.exit?.reason === 'reboot' && reboots < 3) {
      reboots++;
      if (o.restart === 'boot') {
        m.exit = null;
        board.boot(images);
      } else {
        board.reboot();
      }
    } else if (m.exit) {
      break;
    }
  }
  return { out, reboots, code: m.exit?.reason === 'poweroff' ? m.exit.code : undefined, board };
}

const result = (r: BoardRun): BoardRun => ({ out: r.out, reboots: r.reboots, code: r.code });

/** The program's output on QEMU's virt board. */
function qemuOutput(path: string): string {
  requireTool('qemu-system-riscv64');
  const q = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-bios', 'none', '-kernel', path, '-nographic', '-monitor', 'none', '-serial', 'stdio'], {
    encoding: 'utf8', timeout: 60_000, input: '',
  });
  assert.equal(q.status, 0, q.stderr);
  assert.match(q.stdout, /^boot 1 [0-9a-f]{16}\nboot 2 [0-9a-f]{16}\n$/);
  return q.stdout;
}

describe('reboot under the translator', () => {
  it('hot code translated before a syscon reboot runs again after it, as on QEMU', () => {
    const path = elf();
    const want = { out: qemuOutput(path), reboots: 1, code: 0 };
    for (const threshold of [50, 5000]) assert.deepEqual(result(runBoard(path, 'jit', { threshold })), want, `threshold ${threshold}`);
    assert.deepEqual(result(runBoard(path, 'interp')), want);
  });

  it('the CLI reboots a guest running translated code (default engine and threshold)', () => {
    const r = runVirtus(['run', '--bios', 'none', '--kernel', elf(), '--max-insns', '50000000']);
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^boot 1 [0-9a-f]{16}\nboot 2 [0-9a-f]{16}\n$/);
  });

  it('reset() returns the engine to its power-on state: no page flagged as code, no decoded instruction', () => {
    const path = elf();
    const r = runBoard(path, 'jit', { threshold: 5000 });
    const m = r.board.machine;
    const stats = m.jit!.stats;
    // Both boots translated their two hot pages (the loop's and the function's).
    assert.ok(stats.regionsCompiled >= 4, `regions compiled: ${stats.regionsCompiled}`);
    assert.ok(m.pageFlags.some((f) => f & PAGE_CODE));
    assert.ok(m.harts[0]!.decoded.pages.some((d) => d !== undefined), 'the boots decoded instructions');
    m.jit!.reset();
    assert.ok(!m.pageFlags.some((f) => f & PAGE_CODE), 'no page is flagged as code after reset()');
    const d = m.harts[0]!.decoded;
    assert.ok(d.pages.every((p) => p === undefined) && d.owner.every((p) => p === -1), 'the decode cache is empty');
  });

  it('a hart reset behind the engine (its jump-cache generation rewritten) does not reach stale entries', () => {
    const path = elf();
    assert.deepEqual(result(runBoard(path, 'jit', { restart: 'boot' })), { out: qemuOutput(path), reboots: 1, code: 0 });
  });
});
