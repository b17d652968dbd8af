/**
 * Handlers for the F and D rows of the instruction table (Unprivileged ch. 20, 21), built on
 * the bit-pattern FPU of src/fpu/. What belongs to the hart rather than to IEEE 754 lives here:
 * - mstatus.FS (Privileged 3.1.6.6): every F/D instruction is illegal while FS is Off; writing
 *   an f register, or raising a flag (a write of fflags), makes FS Dirty.
 * - rounding modes (Unprivileged 20.2): the rm field, or frm when rm is DYN; the reserved
 *   encodings (static 5 and 6, dynamic 5 to 7) are illegal instructions, also for instructions
 *   whose result the mode cannot change (FCVT.D.S, FCVT.D.W).
 * - NaN-boxing (Unprivileged 21.2): a single-precision result is written with the upper 32
 *   bits all ones; an operand that is not so boxed reads as the canonical NaN, except for the
 *   transfers FSW and FMV.X.W, which move the low 32 bits as they are.
 */
import {
  f32Class, f32Eq, f32Lt, f32MinMax, f64Class, f64Eq, f64Lt, f64MinMax,
} from '../fpu/compare.ts';
import { f32ToF64, f32ToInt, f64ToF32, f64ToInt, intToF32, intToF64 } from '../fpu/convert.ts';
import { f32Add, f32Div, f32Fma, f32Mul, f32Sqrt } from '../fpu/f32.ts';
import {
  f64Add, f64AddFast, f64Div, f64DivFast, f64Mul, f64MulFast, f64Sqrt, f64SqrtFast,
} from '../fpu/f64.ts';
import { f64Fma, f64FmaFast } from '../fpu/fma64.ts';
import { CANONICAL_NAN_S, fpOut, takeFlags } from '../fpu/state.ts';
import { MSTATUS_FS } from './csr-numbers.ts';
import { S } from './hart.ts';
import type { Handler, HandlerContext } from './handler.ts';
import { memOut } from './memory.ts';
import { St } from './status.ts';
import { illegal } from './system.ts';

const SIGN = 0x8000_0000 | 0;

/** Builds the F and D handlers for the interpreter of `ctx.h`. */
export function createFpHandlers(ctx: HandlerContext): Record<string, Handler> {
  const h = ctx.h;
  const F = h.f;
  const X = h.x;
  const SS = h.s;
  /**
   * The f registers as doubles: the fast forms of the binary64 operations take and return host
   * doubles, which saves splitting every operand into halves and joining it again (the join,
   * two 32-bit stores read back as one 64-bit load, stalls store forwarding on x86). Results
   * that are not plain doubles (NaNs) are written as halves by the bit-pattern forms.
   */
  const FD = new Float64Array(F.buffer, F.byteOffset, 32);
  const MS = S.mstatus;
  const FCSR = S.fcsr;

  const trap = (raw: number): St => {
    ctx.sync();
    return illegal(h, raw);
  };
  // Handlers call these small helpers directly (never through function-valued parameters), so
  // V8 inlines them and each handler's call into src/fpu stays monomorphic.
  const off = (): boolean => (SS[MS]! & MSTATUS_FS) === 0;
  /** The effective rounding mode (rm in bits 24-26 of `a`, or frm for DYN), or -1 when the instruction is illegal. */
  const mode = (a: number): number => {
    if ((SS[MS]! & MSTATUS_FS) === 0) return -1;
    let rm = (a >>> 24) & 7;
    if (rm === 7) rm = (SS[FCSR]! >>> 5) & 7;
    return rm <= 4 ? rm : -1;
  };
  /** After writing an f register: accrue the flags; FS becomes Dirty. */
  const wroteF = (): St => {
    const fl = takeFlags();
    if (fl !== 0) SS[FCSR] = SS[FCSR]! | fl;
    SS[MS] = SS[MS]! | MSTATUS_FS; // h.fsDirty(), without its slot-name lookup
    return St.Next;
  };
  /** After writing an x register: FS becomes Dirty only if flags were raised (fflags written). */
  const wroteX = (): St => {
    const fl = takeFlags();
    if (fl !== 0) {
      SS[FCSR] = SS[FCSR]! | fl;
      SS[MS] = SS[MS]! | MSTATUS_FS;
    }
    return St.Next;
  };
  /** A single-precision operand: the low word if NaN-boxed, else the canonical NaN. */
  const s32 = (r: number): number => (F[r + 1] === -1 ? F[r]! : CANONICAL_NAN_S);
  const box = (rd: number, v: number): void => {
    F[rd] = v;
    F[rd + 1] = -1;
  };
  /** Writes a host double result to rd and finishes. */
  const doneN = (a: number, v: number): St => {
    FD[(a & 0xff) >> 1] = v;
    return wroteF();
  };
  /** Writes a double result to rd and finishes. */
  const doneD = (a: number): St => {
    const rd = a & 0xff;
    F[rd] = fpOut[0]!;
    F[rd + 1] = fpOut[1]!;
    return wroteF();
  };
  /** Writes a single result, NaN-boxed, to rd and finishes. */
  const doneS = (a: number): St => {
    box(a & 0xff, fpOut[0]!);
    return wroteF();
  };
  /** Writes an integer result to x[rd] and finishes. */
  const doneX = (a: number): St => {
    const rd = a & 0xff;
    X[rd] = fpOut[0]!;
    X[rd + 1] = fpOut[1]!;
    return wroteX();
  };
  const setX = (a: number, v: number): St => {
    const rd = a & 0xff;
    X[rd] = v;
    X[rd + 1] = 0;
    return wroteX();
  };
  const r1 = (a: number): number => (a >>> 8) & 0xff;
  const r2 = (a: number): number => (a >>> 16) & 0xff;
  const r3 = (a: number): number => (a >>> 27) << 1;

  // Unprivileged 20.6: FMSUB negates the addend, FNMSUB the product, FNMADD both; negating an
  // operand is exact, so the fused operation still rounds once.
  const d4 = (negA: number, negC: number): Handler => (a, _imm, raw) => {
    const rm = mode(a);
    if (rm < 0) return trap(raw);
    const x = r1(a);
    const y = r2(a);
    const z = r3(a);
    const xv = FD[x >> 1]!;
    const zv = FD[z >> 1]!;
    const v = f64FmaFast(negA ? -xv : xv, FD[y >> 1]!, negC ? -zv : zv, rm);
    if (v === v) return doneN(a, v);
    f64Fma(F[x]!, F[x + 1]! ^ negA, F[y]!, F[y + 1]!, F[z]!, F[z + 1]! ^ negC, rm);
    return doneD(a);
  };
  const s4 = (negA: number, negC: number): Handler => (a, _imm, raw) => {
    const rm = mode(a);
    if (rm < 0) return trap(raw);
    f32Fma(s32(r1(a)) ^ negA, s32(r2(a)), s32(r3(a)) ^ negC, rm);
    return doneS(a);
  };
  // Sign injection (Unprivileged 20.7): every bit but the sign from rs1; no flags, no canonicalising.
  const sgnjD = (kind: number): Handler => (a, _imm, raw) => {
    if (off()) return trap(raw);
    const x = r1(a);
    const hi = F[x + 1]!;
    const s = F[r2(a) + 1]!;
    const sign = kind === 0 ? s : kind === 1 ? ~s : hi ^ s;
    const rd = a & 0xff;
    F[rd] = F[x]!;
    F[rd + 1] = (hi & 0x7fff_ffff) | (sign & SIGN);
    return wroteF();
  };
  const sgnjS = (kind: number): Handler => (a, _imm, raw) => {
    if (off()) return trap(raw);
    const v = s32(r1(a));
    const s = s32(r2(a));
    const sign = kind === 0 ? s : kind === 1 ? ~s : v ^ s;
    box(a & 0xff, (v & 0x7fff_ffff) | (sign & SIGN));
    return wroteF();
  };
  const minMaxD = (max: boolean): Handler => (a, _imm, raw) => {
    if (off()) return trap(raw);
    const x = r1(a);
    const y = r2(a);
    f64MinMax(F[x]!, F[x + 1]!, F[y]!, F[y + 1]!, max);
    return doneD(a);
  };
  const minMaxS = (max: boolean): Handler => (a, _imm, raw) => {
    if (off()) return trap(raw);
    f32MinMax(s32(r1(a)), s32(r2(a)), max);
    return doneS(a);
  };
  const ltD = (le: boolean): Handler => (a, _imm, raw) => {
    if (off()) return trap(raw);
    const x = r1(a);
    const y = r2(a);
    return setX(a, f64Lt(F[x]!, F[x + 1]!, F[y]!, F[y + 1]!, le));
  };
  const ltS = (le: boolean): Handler => (a, _imm, raw) => (off() ? trap(raw) : setX(a, f32Lt(s32(r1(a)), s32(r2(a)), le)));
  const toIntD = (kind: number): Handler => (a, _imm, raw) => {
    const rm = mode(a);
    if (rm < 0) return trap(raw);
    const x = r1(a);
    f64ToInt(F[x]!, F[x + 1]!, kind, rm);
    return doneX(a);
  };
  const toIntS = (kind: number): Handler => (a, _imm, raw) => {
    const rm = mode(a);
    if (rm < 0) return trap(raw);
    f32ToInt(s32(r1(a)), kind, rm);
    return doneX(a);
  };
  const fromIntD = (kind: number): Handler => (a, _imm, raw) => {
    const rm = mode(a);
    if (rm < 0) return trap(raw);
    const x = r1(a);
    intToF64(X[x]!, X[x + 1]!, kind, rm);
    return doneD(a);
  };
  const fromIntS = (kind: number): Handler => (a, _imm, raw) => {
    const rm = mode(a);
    if (rm < 0) return trap(raw);
    const x = r1(a);
    intToF32(X[x]!, X[x + 1]!, kind, rm);
    return doneS(a);
  };

  const out: Record<string, Handler> = {
    // Loads and stores move raw bits (Unprivileged 20.5, 21.3); the compressed forms expand to these.
    flw: (a, imm, raw) => {
      if (off()) return trap(raw);
      const st = ctx.load(r1(a), imm, 4);
      if (st === St.Trap) return st;
      box(a & 0xff, memOut[0]!);
      SS[MS] = SS[MS]! | MSTATUS_FS;
      return st;
    },
    fld: (a, imm, raw) => {
      if (off()) return trap(raw);
      const st = ctx.load(r1(a), imm, 8);
      if (st === St.Trap) return st;
      const rd = a & 0xff;
      F[rd] = memOut[0]!;
      F[rd + 1] = memOut[1]!;
      SS[MS] = SS[MS]! | MSTATUS_FS;
      return st;
    },
    fsw: (a, imm, raw) => (off() ? trap(raw) : ctx.store(r1(a), imm, 4, F[r2(a)]!, 0)),
    fsd: (a, imm, raw) => {
      if (off()) return trap(raw);
      const y = r2(a);
      return ctx.store(r1(a), imm, 8, F[y]!, F[y + 1]!);
    },

    'fadd.d': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      const x = r1(a);
      const y = r2(a);
      const v = f64AddFast(FD[x >> 1]!, FD[y >> 1]!, rm);
      if (v === v) return doneN(a, v);
      f64Add(F[x]!, F[x + 1]!, F[y]!, F[y + 1]!, rm);
      return doneD(a);
    },
    'fsub.d': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      const x = r1(a);
      const y = r2(a);
      // a - b = a + (-b), exactly
      const v = f64AddFast(FD[x >> 1]!, -FD[y >> 1]!, rm);
      if (v === v) return doneN(a, v);
      f64Add(F[x]!, F[x + 1]!, F[y]!, F[y + 1]! ^ SIGN, rm);
      return doneD(a);
    },
    'fmul.d': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      const x = r1(a);
      const y = r2(a);
      const v = f64MulFast(FD[x >> 1]!, FD[y >> 1]!, rm);
      if (v === v) return doneN(a, v);
      f64Mul(F[x]!, F[x + 1]!, F[y]!, F[y + 1]!, rm);
      return doneD(a);
    },
    'fdiv.d': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      const x = r1(a);
      const y = r2(a);
      const v = f64DivFast(FD[x >> 1]!, FD[y >> 1]!, rm);
      if (v === v) return doneN(a, v);
      f64Div(F[x]!, F[x + 1]!, F[y]!, F[y + 1]!, rm);
      return doneD(a);
    },
    'fsqrt.d': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      const x = r1(a);
      const v = f64SqrtFast(FD[x >> 1]!, rm);
      if (v === v) return doneN(a, v);
      f64Sqrt(F[x]!, F[x + 1]!, rm);
      return doneD(a);
    },
    'fmadd.d': d4(0, 0),
    'fmsub.d': d4(0, SIGN),
    'fnmsub.d': d4(SIGN, 0),
    'fnmadd.d': d4(SIGN, SIGN),
    'fadd.s': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      f32Add(s32(r1(a)), s32(r2(a)), rm);
      return doneS(a);
    },
    'fsub.s': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      f32Add(s32(r1(a)), s32(r2(a)) ^ SIGN, rm);
      return doneS(a);
    },
    'fmul.s': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      f32Mul(s32(r1(a)), s32(r2(a)), rm);
      return doneS(a);
    },
    'fdiv.s': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      f32Div(s32(r1(a)), s32(r2(a)), rm);
      return doneS(a);
    },
    'fsqrt.s': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      f32Sqrt(s32(r1(a)), rm);
      return doneS(a);
    },
    'fmadd.s': s4(0, 0),
    'fmsub.s': s4(0, SIGN),
    'fnmsub.s': s4(SIGN, 0),
    'fnmadd.s': s4(SIGN, SIGN),

    'fsgnj.d': sgnjD(0),
    'fsgnjn.d': sgnjD(1),
    'fsgnjx.d': sgnjD(2),
    'fsgnj.s': sgnjS(0),
    'fsgnjn.s': sgnjS(1),
    'fsgnjx.s': sgnjS(2),
    'fmin.d': minMaxD(false),
    'fmax.d': minMaxD(true),
    'fmin.s': minMaxS(false),
    'fmax.s': minMaxS(true),
    'feq.d': (a, _imm, raw) => {
      if (off()) return trap(raw);
      const x = r1(a);
      const y = r2(a);
      return setX(a, f64Eq(F[x]!, F[x + 1]!, F[y]!, F[y + 1]!));
    },
    'flt.d': ltD(false),
    'fle.d': ltD(true),
    'feq.s': (a, _imm, raw) => (off() ? trap(raw) : setX(a, f32Eq(s32(r1(a)), s32(r2(a))))),
    'flt.s': ltS(false),
    'fle.s': ltS(true),
    'fclass.d': (a, _imm, raw) => (off() ? trap(raw) : setX(a, f64Class(F[r1(a)]!, F[r1(a) + 1]!))),
    'fclass.s': (a, _imm, raw) => (off() ? trap(raw) : setX(a, f32Class(s32(r1(a))))),

    'fcvt.w.d': toIntD(0),
    'fcvt.wu.d': toIntD(1),
    'fcvt.l.d': toIntD(2),
    'fcvt.lu.d': toIntD(3),
    'fcvt.w.s': toIntS(0),
    'fcvt.wu.s': toIntS(1),
    'fcvt.l.s': toIntS(2),
    'fcvt.lu.s': toIntS(3),
    'fcvt.d.w': fromIntD(0),
    'fcvt.d.wu': fromIntD(1),
    'fcvt.d.l': fromIntD(2),
    'fcvt.d.lu': fromIntD(3),
    'fcvt.s.w': fromIntS(0),
    'fcvt.s.wu': fromIntS(1),
    'fcvt.s.l': fromIntS(2),
    'fcvt.s.lu': fromIntS(3),
    'fcvt.s.d': (a, _imm, raw) => {
      const rm = mode(a);
      if (rm < 0) return trap(raw);
      const x = r1(a);
      f64ToF32(F[x]!, F[x + 1]!, rm);
      return doneS(a);
    },
    'fcvt.d.s': (a, _imm, raw) => {
      if (mode(a) < 0) return trap(raw); // exact, but a reserved rm is still illegal
      f32ToF64(s32(r1(a)));
      return doneD(a);
    },

    // Moves transfer bits unchanged; FMV.X.W sign-extends the low word (Unprivileged 20.7).
    'fmv.x.w': (a, _imm, raw) => {
      if (off()) return trap(raw);
      const rd = a & 0xff;
      const v = F[r1(a)]!;
      X[rd] = v;
      X[rd + 1] = v >> 31;
      return St.Next;
    },
    'fmv.w.x': (a, _imm, raw) => {
      if (off()) return trap(raw);
      box(a & 0xff, X[r1(a)]!);
      return wroteF();
    },
    'fmv.x.d': (a, _imm, raw) => {
      if (off()) return trap(raw);
      const rd = a & 0xff;
      const x = r1(a);
      X[rd] = F[x]!;
      X[rd + 1] = F[x + 1]!;
      return St.Next;
    },
    'fmv.d.x': (a, _imm, raw) => {
      if (off()) return trap(raw);
      const rd = a & 0xff;
      const x = r1(a);
      F[rd] = X[x]!;
      F[rd + 1] = X[x + 1]!;
      return wroteF();
    },
  };
  return out;
}
