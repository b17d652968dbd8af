/**
 * Handlers for the F and D rows of the instruction table. Until the FPU (src/fpu/) is wired in,
 * every F/D instruction is an illegal instruction, exactly as on a hart without F and D (misa
 * does not report them; mstatus.FS is read-only zero).
 */
import { INSNS } from '../isa/table.ts';
import { illegal } from './system.ts';
import type { Handler, HandlerContext } from './interp.ts';

export function createFpHandlers(ctx: HandlerContext): Record<string, Handler> {
  const out: Record<string, Handler> = {};
  for (const d of INSNS) {
    if (d.ext !== 'F' && d.ext !== 'D') continue;
    out[d.name] = (_a, _imm, raw) => {
      ctx.sync();
      return illegal(ctx.h, raw);
    };
  }
  return out;
}
