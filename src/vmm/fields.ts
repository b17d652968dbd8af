/**
 * Reading one object of untrusted JSON, field by field, with the path of each field in every
 * error (`machine.devices.disks[0].format: must be one of raw, qcow2, got "vmdk"`). Unknown
 * fields are refused; an absent field takes its default, or is an error when it has none.
 */
import { VirtusError } from '../util/errors.ts';

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

export class Fields {
  /** The object read (empty when the field was absent and optional). */
  readonly value: Record<string, unknown>;

  constructor(
    private readonly path: string,
    value: unknown,
    keys?: readonly string[],
  ) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(null, `must be an object, got ${show(value)}`);
    this.value = value as Record<string, unknown>;
    if (keys) this.only(keys);
  }

  /** Fails with a message about field `key` (or the object itself when null). */
  fail(key: string | null, message: string): never {
    throw new VirtusError('BAD_SPEC', `${key === null ? this.path : `${this.path}.${key}`}: ${message}`);
  }

  /** Refuses fields other than `keys`. */
  only(keys: readonly string[]): void {
    for (const k of Object.keys(this.value)) {
      if (!keys.includes(k)) this.fail(k, `unknown field (expected ${keys.join(', ')})`);
    }
  }

  private has(key: string): boolean {
    return this.value[key] !== undefined;
  }

  int(key: string, o: { min: number; max: number; dflt?: number }): number {
    if (!this.has(key)) {
      if (o.dflt === undefined) this.fail(key, 'is missing');
      return o.dflt;
    }
    const v = this.value[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < o.min || v > o.max) this.fail(key, `must be an integer from ${o.min} to ${o.max}, got ${show(v)}`);
    return v;
  }

  bool(key: string, dflt?: boolean): boolean {
    if (!this.has(key)) {
      if (dflt === undefined) this.fail(key, 'is missing');
      return dflt;
    }
    const v = this.value[key];
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${show(v)}`);
    return v;
  }

  string(key: string, o: { min?: number; max: number; dflt?: string }): string {
    if (!this.has(key)) {
      if (o.dflt === undefined) this.fail(key, 'is missing');
      return o.dflt;
    }
    const v = this.value[key];
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${show(v)}`);
    if (v.length < (o.min ?? 0)) this.fail(key, 'must not be empty');
    if (v.length > o.max) this.fail(key, `must be at most ${o.max} characters long`);
    if (v.includes('\0')) this.fail(key, 'must not contain a NUL character');
    return v;
  }

  optionalString(key: string, max = 4096): string | undefined {
    return this.has(key) ? this.string(key, { max }) : undefined;
  }

  oneOf<T extends string>(key: string, choices: readonly T[], dflt?: T): T {
    if (!this.has(key)) {
      if (dflt === undefined) this.fail(key, 'is missing');
      return dflt;
    }
    const v = this.value[key];
    if (!choices.includes(v as T)) this.fail(key, `must be one of ${choices.join(', ')}, got ${show(v)}`);
    return v as T;
  }

  optionalOneOf<T extends string>(key: string, choices: readonly T[]): T | undefined {
    return this.has(key) ? this.oneOf(key, choices) : undefined;
  }

  /** A nested object; absent and not `required`: an empty one. */
  object(key: string, required: boolean): Fields {
    if (!this.has(key)) {
      if (required) this.fail(key, 'is missing');
      return new Fields(`${this.path}.${key}`, {});
    }
    return new Fields(`${this.path}.${key}`, this.value[key]);
  }

  /** An array of objects, each read by `item`; absent: empty. */
  array<T>(key: string, max: number, item: (f: Fields, i: number) => T): T[] {
    if (!this.has(key)) return [];
    const v = this.value[key];
    if (!Array.isArray(v)) this.fail(key, `must be an array, got ${show(v)}`);
    if (v.length > max) this.fail(key, `has ${v.length} entries; at most ${max}`);
    return v.map((e, i) => item(new Fields(`${this.path}.${key}[${i}]`, e), i));
  }
}
