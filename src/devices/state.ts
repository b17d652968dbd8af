/**
 * Checking device state on restore. Saved state is named plain data (JSON-safe: numbers,
 * booleans, strings, arrays); on restore it is untrusted input (a snapshot file, a migration
 * stream), so every field is checked and the first bad one is reported by name as a
 * VirtusError('BAD_STATE'). 64-bit values travel as decimal strings, since a Number cannot
 * hold them exactly and BigInt is not JSON.
 */
import { VirtusError } from '../util/errors.ts';

/** A component that saves itself as plain data and restores from untrusted data. */
export interface Stateful<S> {
  save(): S;
  /** Replaces the component's state with `state` after checking all of it; throws VirtusError('BAD_STATE'). */
  restore(state: unknown): void;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Reads the fields of one saved object, naming the component and field in every error. */
export class StateReader {
  private readonly obj: Record<string, unknown>;

  /** Checks that `state` is a plain object with exactly the fields `keys`. */
  constructor(
    private readonly component: string,
    state: unknown,
    keys: readonly string[],
  ) {
    if (typeof state !== 'object' || state === null || Array.isArray(state)) {
      this.fail(`state must be an object, got ${describe(state)}`);
    }
    this.obj = state as Record<string, unknown>;
    for (const k of keys) if (!(k in this.obj)) this.fail(`state has no field "${k}"`);
    for (const k of Object.keys(this.obj)) if (!keys.includes(k)) this.fail(`state has an unknown field "${k}"`);
  }

  /** Throws the error for this component. */
  fail(message: string): never {
    throw new VirtusError('BAD_STATE', `${this.component}: ${message}`);
  }

  /** An integer in [0, max]. */
  uint(key: string, max: number): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
      this.fail(`${key} must be an integer from 0 to ${max}, got ${describe(v)}`);
    }
    return v;
  }

  bool(key: string): boolean {
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(`${key} must be true or false, got ${describe(v)}`);
    return v;
  }

  /** One of `choices`. */
  oneOf<T extends number | string>(key: string, choices: readonly T[]): T {
    const v = this.obj[key];
    if (!choices.includes(v as T)) this.fail(`${key} must be one of ${choices.join(', ')}, got ${describe(v)}`);
    return v as T;
  }

  /** An array of integers in [0, max], of exactly `length` entries (or at most `length` with `upTo`). */
  uintArray(key: string, length: number, max: number, o: { upTo?: boolean } = {}): number[] {
    const v = this.obj[key];
    const sized = Array.isArray(v) && (o.upTo ? v.length <= length : v.length === length);
    if (!sized) this.fail(`${key} must be an array of ${o.upTo ? 'at most ' : ''}${length} entries, got ${describe(v)}`);
    (v as unknown[]).forEach((e, i) => {
      if (typeof e !== 'number' || !Number.isInteger(e) || e < 0 || e > max) {
        this.fail(`${key}[${i}] must be an integer from 0 to ${max}, got ${describe(e)}`);
      }
    });
    return v as number[];
  }

  /** A 64-bit unsigned value saved as a decimal string. */
  u64(key: string): bigint {
    return this.parseU64(this.obj[key], key);
  }

  /** An array of `length` 64-bit unsigned values saved as decimal strings. */
  u64Array(key: string, length: number): bigint[] {
    const v = this.obj[key];
    if (!Array.isArray(v) || v.length !== length) this.fail(`${key} must be an array of ${length} entries, got ${describe(v)}`);
    return v.map((e, i) => this.parseU64(e, `${key}[${i}]`));
  }

  private parseU64(v: unknown, what: string): bigint {
    if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(v) || BigInt(v) > 0xffff_ffff_ffff_ffffn) {
      this.fail(`${what} must be a decimal string of a 64-bit unsigned integer, got ${describe(v)}`);
    }
    return BigInt(v);
  }
}

/** A 64-bit value as saved state (decimal string). */
export function u64State(v: bigint): string {
  return BigInt.asUintN(64, v).toString();
}
