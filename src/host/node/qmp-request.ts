/**
 * QMP's input, read as QEMU 7.2 reads it (qapi/control.json, qmp-dispatch.c): one JSON text
 * becomes a request (`execute` or `exec-oob`, `arguments`, `id`), and a command's arguments are
 * checked against its parameters. Everything here is untrusted input; every refusal is a
 * QmpError carrying QEMU's error class and message, and the request's id once it is known.
 */
import { VirtusError } from '../../util/errors.ts';
import type { JsonPiece } from './json-stream.ts';

export type Json = Record<string, unknown>;

/** A refused request or a failed command, with QEMU's error class. */
export class QmpError extends VirtusError {
  /** The request's `id`, to be echoed in the error reply. */
  id: unknown;

  constructor(
    readonly cls: 'GenericError' | 'CommandNotFound' | 'DeviceNotActive',
    desc: string,
  ) {
    super(`QMP_${cls.toUpperCase()}`, desc);
  }
}

/** A request: the command, its arguments (not yet checked), whether it came out of band. */
export interface QmpRequest {
  command: string;
  args: Json;
  oob: boolean;
  id: unknown;
}

/** The members a request may have. */
const MEMBERS = new Set(['execute', 'exec-oob', 'arguments', 'id']);

const generic = (desc: string): QmpError => new QmpError('GenericError', desc);

/** Reads one request; `oob` says whether the client enabled out-of-band execution. */
export function parseRequest(piece: JsonPiece, oob: boolean): QmpRequest {
  if ('refused' in piece) throw generic(piece.refused);
  let msg: unknown;
  try {
    msg = JSON.parse(piece.text);
  } catch (e) {
    throw generic(`JSON parse error, ${(e as Error).message}`);
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw generic('QMP input must be a JSON object');
  const o = msg as Json;
  try {
    for (const [k, v] of Object.entries(o)) {
      if (!MEMBERS.has(k)) throw generic(`QMP input member '${k}' is unexpected`);
      if ((k === 'execute' || k === 'exec-oob') && typeof v !== 'string') throw generic(`QMP input member '${k}' must be a string`);
      if (k === 'arguments' && (typeof v !== 'object' || v === null || Array.isArray(v))) throw generic("QMP input member 'arguments' must be an object");
    }
    const has = (k: string): boolean => Object.hasOwn(o, k);
    if (has('exec-oob')) {
      if (has('execute')) throw generic("QMP input member 'execute' clashes with 'exec-oob'");
      if (!oob) throw generic("QMP input member 'exec-oob' is unexpected");
    } else if (!has('execute')) {
      throw generic("QMP input lacks member 'execute'");
    }
    return { command: (o.execute ?? o['exec-oob']) as string, args: (has('arguments') ? o.arguments : {}) as Json, oob: has('exec-oob'), id: o.id };
  } catch (e) {
    if (e instanceof QmpError) e.id = o.id;
    throw e;
  }
}

/** A command's parameters: a name (`name?` when optional) and its type (a JSON type, or `int`). */
export type QmpParams = Record<string, 'string' | 'boolean' | 'int' | 'array'>;

/** Checks `args` against `params`, with QEMU's messages. */
export function checkArguments(params: QmpParams, args: Json): void {
  const param = (k: string): string | undefined => (Object.hasOwn(params, k) ? params[k] : Object.hasOwn(params, `${k}?`) ? params[`${k}?`] : undefined);
  for (const [k, v] of Object.entries(args)) {
    const want = param(k);
    if (want === undefined) throw generic(`Parameter '${k}' is unexpected`);
    const ok = want === 'array' ? Array.isArray(v) : want === 'int' ? Number.isSafeInteger(v) : typeof v === want;
    if (!ok) throw generic(`Invalid parameter type for '${k}', expected: ${want === 'int' ? 'integer' : want}`);
  }
  for (const k of Object.keys(params)) {
    if (!k.endsWith('?') && !Object.hasOwn(args, k)) throw generic(`Parameter '${k}' is missing`);
  }
}
