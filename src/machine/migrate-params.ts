/**
 * Migration capabilities and parameters, with QEMU 7.2's names, defaults and limits
 * (qapi/migration.json: MigrationCapability, MigrationParameters; migration.c's checks), so
 * QMP's migrate-set-capabilities / migrate-set-parameters and their queries mean the same on
 * virtus. Values are checked as untrusted input; a refusal is a VirtusError whose message is
 * QEMU's where QEMU has one.
 *
 * What takes effect here: capabilities xbzrle, auto-converge, compress, events, postcopy-ram
 * (and return-path, which virtus always has); parameters downtime-limit, max-bandwidth, the
 * cpu-throttle family, throttle-trigger-threshold, xbzrle-cache-size, compress-level. The
 * other names exist so the queries answer with QEMU's shape; they keep their defaults (asking
 * for anything else is refused, naming the feature virtus lacks). postcopy-ram with compress is
 * refused as QEMU refuses it.
 */
import { VirtusError } from '../util/errors.ts';

/** Every capability QEMU 7.2 knows, in its order (query-migrate-capabilities lists them so). */
export const CAPABILITIES = [
  'xbzrle', 'rdma-pin-all', 'auto-converge', 'zero-blocks', 'compress', 'events', 'postcopy-ram', 'x-colo',
  'release-ram', 'block', 'return-path', 'pause-before-switchover', 'multifd', 'dirty-bitmaps',
  'postcopy-blocktime', 'late-block-activate', 'x-ignore-shared', 'validate-uuid', 'background-snapshot',
  'zero-copy-send', 'postcopy-preempt',
] as const;

export type Capability = (typeof CAPABILITIES)[number];
export type Capabilities = Record<Capability, boolean>;

/** The capabilities virtus can turn on (each does what QEMU's does). */
const SUPPORTED = new Set<Capability>(['xbzrle', 'auto-converge', 'compress', 'events', 'postcopy-ram', 'return-path', 'late-block-activate']);

/** The parameters as QEMU's query-migrate-parameters answers them. */
export interface MigrationParameters {
  'announce-initial': number;
  'announce-max': number;
  'announce-rounds': number;
  'announce-step': number;
  'compress-level': number;
  'compress-threads': number;
  'compress-wait-thread': boolean;
  'decompress-threads': number;
  'throttle-trigger-threshold': number;
  'cpu-throttle-initial': number;
  'cpu-throttle-increment': number;
  'cpu-throttle-tailslow': boolean;
  'tls-creds': string;
  'tls-hostname': string;
  'tls-authz': string;
  /** Bytes per second during pre-copy. */
  'max-bandwidth': number;
  /** Milliseconds the guest may be stopped for the last copy. */
  'downtime-limit': number;
  'x-checkpoint-delay': number;
  'block-incremental': boolean;
  'multifd-channels': number;
  'xbzrle-cache-size': number;
  /** Bytes per second of the background stream in post-copy (0: unlimited). */
  'max-postcopy-bandwidth': number;
  'max-cpu-throttle': number;
  'multifd-compression': string;
  'multifd-zlib-level': number;
  'multifd-zstd-level': number;
}

/** QEMU 7.2's defaults (migration.c). */
export const DEFAULT_PARAMETERS: Readonly<MigrationParameters> = Object.freeze({
  'announce-initial': 50,
  'announce-max': 550,
  'announce-rounds': 5,
  'announce-step': 100,
  'compress-level': 1,
  'compress-threads': 8,
  'compress-wait-thread': true,
  'decompress-threads': 2,
  'throttle-trigger-threshold': 50,
  'cpu-throttle-initial': 20,
  'cpu-throttle-increment': 10,
  'cpu-throttle-tailslow': false,
  'tls-creds': '',
  'tls-hostname': '',
  'tls-authz': '',
  'max-bandwidth': 128 << 20,
  'downtime-limit': 300,
  'x-checkpoint-delay': 20000,
  'block-incremental': false,
  'multifd-channels': 2,
  'xbzrle-cache-size': 64 << 20,
  'max-postcopy-bandwidth': 0,
  'max-cpu-throttle': 99,
  'multifd-compression': 'none',
  'multifd-zlib-level': 1,
  'multifd-zstd-level': 1,
});

export const DEFAULT_CAPABILITIES: Readonly<Capabilities> = Object.freeze(Object.fromEntries(CAPABILITIES.map((c) => [c, false])) as Capabilities);

/** QAPI's integer types of the parameters (their names appear in QEMU's type errors). */
type Kind = 'uint8' | 'uint32' | 'uint64' | 'size' | 'bool' | 'str' | 'enum';
const KINDS: Record<keyof MigrationParameters, Kind> = {
  'announce-initial': 'size', 'announce-max': 'size', 'announce-rounds': 'size', 'announce-step': 'size',
  'compress-level': 'uint8', 'compress-threads': 'uint8', 'compress-wait-thread': 'bool', 'decompress-threads': 'uint8',
  'throttle-trigger-threshold': 'uint8', 'cpu-throttle-initial': 'uint8', 'cpu-throttle-increment': 'uint8', 'cpu-throttle-tailslow': 'bool',
  'tls-creds': 'str', 'tls-hostname': 'str', 'tls-authz': 'str', 'max-bandwidth': 'size', 'downtime-limit': 'uint64',
  'x-checkpoint-delay': 'uint32', 'block-incremental': 'bool', 'multifd-channels': 'uint8', 'xbzrle-cache-size': 'size',
  'max-postcopy-bandwidth': 'size', 'max-cpu-throttle': 'uint8', 'multifd-compression': 'enum', 'multifd-zlib-level': 'uint8',
  'multifd-zstd-level': 'uint8',
};

/** Parameters that take effect in virtus (the rest must keep their defaults). */
const EFFECTIVE = new Set<keyof MigrationParameters>([
  'compress-level', 'throttle-trigger-threshold', 'cpu-throttle-initial', 'cpu-throttle-increment', 'cpu-throttle-tailslow',
  'max-bandwidth', 'downtime-limit', 'xbzrle-cache-size', 'max-postcopy-bandwidth', 'max-cpu-throttle',
  // Accepted as QEMU accepts them: thread counts and waits have no meaning for one thread.
  'compress-threads', 'decompress-threads', 'compress-wait-thread',
]);

const MAX_DOWNTIME = 2000 * 1000;
const MAX_U64 = Number.MAX_SAFE_INTEGER;

function bad(message: string): never {
  throw new VirtusError('MIGRATE_PARAMETER', message);
}

/** A value of QAPI kind `k` for parameter `name`, checked as QEMU's input visitor does. */
function typed(name: string, k: Kind, v: unknown): number | boolean | string {
  switch (k) {
    case 'bool':
      if (typeof v !== 'boolean') bad(`Invalid parameter type for '${name}', expected: boolean`);
      return v;
    case 'str':
      if (typeof v !== 'string' && v !== null) bad(`Invalid parameter type for '${name}', expected: string`);
      return v ?? '';
    case 'enum':
      if (typeof v !== 'string') bad(`Invalid parameter type for '${name}', expected: string`);
      if (!['none', 'zlib', 'zstd'].includes(v)) bad(`Parameter '${name}' does not accept value '${v}'`);
      return v;
    default: {
      // QEMU's qobject input visitor: a uint64 (and a size) takes a negative integer modulo
      // 2^64; narrower types are range-checked and named as C types.
      const c = k === 'uint8' ? 'uint8_t' : k === 'uint32' ? 'uint32_t' : 'uint64';
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(`Parameter '${name}' expects ${c === 'uint64' ? c : 'uint64'}`);
      if (v < 0 && (k === 'uint64' || k === 'size')) return 2 ** 64 + v;
      const max = k === 'uint8' ? 255 : k === 'uint32' ? 0xffffffff : MAX_U64;
      if (v < 0 || v > max) bad(`Parameter '${name}' expects ${c}`);
      return v;
    }
  }
}

/**
 * The parameters after applying `changes` (QMP migrate-set-parameters' arguments) to `now`,
 * checked as QEMU's migrate_params_check does; refuses the whole change on any bad value.
 */
export function setParameters(now: MigrationParameters, changes: Record<string, unknown>): MigrationParameters {
  const next = { ...now } as Record<string, unknown>;
  for (const [name, v] of Object.entries(changes)) {
    if (!Object.hasOwn(KINDS, name)) bad(`Parameter '${name}' is unexpected`);
    const key = name as keyof MigrationParameters;
    const value = typed(name, KINDS[key], v);
    if (!EFFECTIVE.has(key) && value !== DEFAULT_PARAMETERS[key]) {
      bad(`Parameter '${name}': virtus has no ${name.startsWith('tls') ? 'TLS' : name.startsWith('multifd') ? 'multifd' : name.startsWith('announce') ? 'tunable announcements' : name.startsWith('block') ? 'block migration' : 'COLO'} for migrations; it keeps ${JSON.stringify(DEFAULT_PARAMETERS[key])}`);
    }
    next[name] = value;
  }
  const p = next as unknown as MigrationParameters;
  // migration.c migrate_params_check, in its order and words.
  if (p['compress-level'] > 9) bad("Parameter 'compress_level' expects a value between 0 and 9");
  if (p['compress-threads'] < 1) bad("Parameter 'compress_threads' expects a value between 1 and 255");
  if (p['decompress-threads'] < 1) bad("Parameter 'decompress_threads' expects a value between 1 and 255");
  if (p['throttle-trigger-threshold'] < 1 || p['throttle-trigger-threshold'] > 100) bad("Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100");
  if (p['cpu-throttle-initial'] < 1 || p['cpu-throttle-initial'] > 99) bad("Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99");
  if (p['cpu-throttle-increment'] < 1 || p['cpu-throttle-increment'] > 99) bad("Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99");
  if (p['downtime-limit'] > MAX_DOWNTIME) bad("Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms");
  if (p['xbzrle-cache-size'] < 4096 || !isPow2(p['xbzrle-cache-size'])) {
    bad("Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size");
  }
  if (p['max-cpu-throttle'] < p['cpu-throttle-initial'] || p['max-cpu-throttle'] > 99) bad("Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99");
  return p;
}

function isPow2(n: number): boolean {
  return n > 0 && Number.isSafeInteger(n) && 2 ** Math.round(Math.log2(n)) === n;
}

/**
 * The capabilities after QMP migrate-set-capabilities' `list` ([{capability, state}]);
 * refuses capabilities QEMU does not know (with QEMU's words) and ones virtus cannot do.
 */
export function setCapabilities(now: Capabilities, list: unknown): Capabilities {
  if (!Array.isArray(list)) bad("Invalid parameter type for 'capabilities', expected: array");
  const next = { ...now };
  list.forEach((item: unknown, i) => {
    const at = `capabilities[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) bad(`Invalid parameter type for '${at}', expected: object`);
    const o = item as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'capability' && k !== 'state') bad(`Parameter '${at}.${k}' is unexpected`);
    if (!Object.hasOwn(o, 'capability')) bad(`Parameter '${at}.capability' is missing`);
    if (typeof o.capability !== 'string') bad(`Invalid parameter type for '${at}.capability', expected: string`);
    if (!(CAPABILITIES as readonly string[]).includes(o.capability)) bad(`Parameter 'capability' does not accept value '${o.capability}'`);
    if (!Object.hasOwn(o, 'state')) bad(`Parameter '${at}.state' is missing`);
    if (typeof o.state !== 'boolean') bad(`Invalid parameter type for '${at}.state', expected: boolean`);
    const cap = o.capability as Capability;
    if (o.state && !SUPPORTED.has(cap)) bad(`virtus does not support the migration capability '${cap}'`);
    next[cap] = o.state;
  });
  // migration.c migrate_caps_check.
  if (next['postcopy-ram'] && next.compress) bad('Postcopy is not currently compatible with compression');
  return next;
}

/** Migration settings as one value: what a migration is started with. */
export interface MigrationSettings {
  capabilities: Capabilities;
  parameters: MigrationParameters;
}

/** QEMU's defaults for both. */
export function defaultSettings(): MigrationSettings {
  return { capabilities: { ...DEFAULT_CAPABILITIES }, parameters: { ...DEFAULT_PARAMETERS } };
}
