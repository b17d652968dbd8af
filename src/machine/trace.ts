/**
 * Instruction tracing (`--trace`): runs a machine one instruction at a time and reports the pc,
 * the disassembly and the register the instruction wrote. Slow by design; for debugging.
 */
import { decode } from '../isa/decode.ts';
import { disassemble } from '../isa/disasm.ts';
import { X_NAMES, F_NAMES } from '../isa/formats.ts';
import { Kind } from '../isa/table.ts';
import { translate, mmuOut } from '../cpu/mmu.ts';
import { Access } from '../cpu/trap.ts';
import type { Hart } from '../cpu/hart.ts';
import { causeName } from '../cpu/trap.ts';
import { EXIT_MAX_INSNS } from './runner.ts';
import type { Machine, MachineExit } from './machine.ts';

const hex64 = (v: bigint): string => v.toString(16).padStart(16, '0');

export class Tracer {
  constructor(
    private readonly machine: Machine,
    private readonly emit: (line: string) => void,
  ) {}

  /** Runs to completion (or `maxInsns`), emitting one line per instruction and per trap. */
  run(maxInsns = Infinity): MachineExit | null {
    const m = this.machine;
    while (!m.exit) {
      const h = m.harts[Math.max(0, m.nextHart())]!;
      if (m.instret() >= maxInsns) {
        m.stop({ code: EXIT_MAX_INSNS, reason: 'max-insns', message: `stopped after ${maxInsns} instructions (--max-insns)` });
        break;
      }
      const pc = h.pcBig;
      const raw = this.peek(h, pc);
      const trapsBefore = this.count(h.trapCounts) + this.count(h.irqCounts);
      const n = m.slice(1);
      if (n === 0 && m.allIdle()) {
        const d = m.nextDeadline();
        if (d === Infinity) {
          m.stop({ code: 1, reason: 'fatal', message: 'the guest waits for an interrupt that can never arrive' });
          break;
        }
        m.clock.skipTo(d);
        continue;
      }
      const d = raw === null ? null : decode(raw);
      const text = d ? disassemble(d, pc) : 'unknown';
      let line = `${m.harts.length > 1 ? `hart${h.id} ` : ''}${hex64(pc)}: ${text}`;
      if (n === 1 && d && d.rd !== 0 && d.def.kind !== Kind.Store && d.def.kind !== Kind.Branch) {
        const f = d.def.regs[0] === 'f';
        if (f || d.def.format !== 'S') {
          const v = f ? BigInt.asUintN(64, (BigInt(h.f[2 * d.rd + 1]!) << 32n) | BigInt(h.f[2 * d.rd]! >>> 0)) : h.xBig(d.rd);
          line += `  ${f ? F_NAMES[d.rd] : X_NAMES[d.rd]}=0x${hex64(v)}`;
        }
      }
      this.emit(line);
      if (this.count(h.trapCounts) + this.count(h.irqCounts) !== trapsBefore) {
        const mc = h.priv === 3 ? h.getNum('mcause') : h.getNum('scause');
        const irq = mc >= 2 ** 63;
        this.emit(`  trap: ${causeName(irq ? mc - 2 ** 63 : mc, irq)} -> ${hex64(h.pcBig)} (${'USHM'[h.priv]}-mode)`);
      }
    }
    return m.exit;
  }

  private count(c: Map<number, number>): number {
    let n = 0;
    for (const v of c.values()) n += v;
    return n;
  }

  /** The instruction bits at `pc`, or null when it cannot be fetched. */
  private peek(h: Hart, pc: bigint): number | null {
    const lo = Number(pc & 0xffffffffn) | 0;
    const hi = Number(pc >> 32n) | 0;
    if (translate(h, lo, hi, Access.Fetch, h.fetchMmu()) >= 0) return null;
    const o = h.ramOffset(mmuOut.pa, 2);
    if (o < 0) return null;
    const low = h.m16[o >>> 1]!;
    if ((low & 3) !== 3) return low;
    const o2 = h.ramOffset(mmuOut.pa + 2, 2);
    return o2 < 0 ? null : low | (h.m16[o2 >>> 1]! << 16);
  }
}
