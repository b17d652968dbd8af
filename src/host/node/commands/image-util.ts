/** Helpers shared by the `virtus image` subcommands: -o options, sizes as qemu-img prints them, progress. */
import type { ImageFormat } from '../../../storage/backend.ts';
import { parseFormat } from '../../../storage/open.ts';
import type { Qcow2CreateOptions } from '../../../storage/qcow2/create.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseSize } from '../../../util/size.ts';

/** Splits qemu-img's `-o key=value,key=value` (",," is a literal comma). */
export function parseOptionList(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!text) return out;
  for (const part of text.replace(/,,/g, '\0').split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const value = (eq < 0 ? 'on' : part.slice(eq + 1)).replace(/\0/g, ',');
    out.set(key, value);
  }
  return out;
}

function onOff(key: string, v: string): boolean {
  if (['on', 'true', 'yes'].includes(v)) return true;
  if (['off', 'false', 'no'].includes(v)) return false;
  throw new VirtusError('BAD_OPTION', `-o ${key}: expected on or off, got '${v}'`, { exitCode: 2 });
}

/** The qcow2 creation options named in `-o` (qemu-img's names); unknown ones are refused. */
export function qcow2Options(opts: Map<string, string>): Partial<Qcow2CreateOptions> {
  const o: Partial<Qcow2CreateOptions> = {};
  for (const [k, v] of opts) {
    switch (k) {
      case 'cluster_size': o.clusterSize = parseSize(v, '-o cluster_size'); break;
      case 'compat':
        if (v === '0.10' || v === 'v2') o.version = 2;
        else if (v === '1.1' || v === 'v3') o.version = 3;
        else throw new VirtusError('BAD_OPTION', `-o compat: '${v}' is not 0.10 or 1.1`, { exitCode: 2 });
        break;
      case 'refcount_bits': o.refcountBits = Number(v); break;
      case 'lazy_refcounts': o.lazyRefcounts = onOff(k, v); break;
      case 'compression_type':
        if (v !== 'zlib' && v !== 'zstd') throw new VirtusError('BAD_OPTION', `-o compression_type: '${v}' is not zlib or zstd`, { exitCode: 2 });
        o.compressionType = v;
        break;
      case 'extended_l2':
        if (onOff(k, v)) throw new VirtusError('NOT_SUPPORTED', 'virtus does not create images with extended L2 entries');
        break;
      case 'preallocation':
        if (v !== 'off') throw new VirtusError('NOT_SUPPORTED', `preallocation=${v} is not supported (only off)`);
        break;
      case 'backing_file': case 'backing_fmt': case 'size': break; // taken by the caller
      default: throw new VirtusError('BAD_OPTION', `-o: unknown qcow2 option '${k}'`, { exitCode: 2 });
    }
  }
  return o;
}

/** The format a file name suggests (.qcow2 / .raw, .img), else `fallback`. */
export function formatFor(path: string, given: string | undefined, fallback: ImageFormat, what: string): ImageFormat {
  if (given !== undefined) return parseFormat(given, what);
  if (/\.qcow2?$/i.test(path)) return 'qcow2';
  if (/\.(raw|img|bin)$/i.test(path)) return 'raw';
  return fallback;
}

/** A size as qemu-img prints it: three significant digits and a binary unit ("196 KiB", "4.38 MiB"). */
export function humanSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let i = 0;
  // Switch to the next unit once the number would have four digits before the point.
  while (i < units.length - 1 && n / 1024 ** i >= 1000) i++;
  return `${Number((n / 1024 ** i).toPrecision(3))} ${units[i]}`;
}

/**
 * A progress line on stderr like qemu-img's `-p` ("    (42.00/100%)"), redrawn in place;
 * shown when asked for or when stderr is a terminal, never with -q.
 */
export function progressPrinter(enabled: boolean): { update(done: number, total: number): void; end(): void } {
  let last = '';
  let shown = false;
  return {
    update(done, total) {
      if (!enabled) return;
      const pct = total === 0 ? 100 : (done / total) * 100;
      const text = `    (${pct.toFixed(2)}/100%)`;
      if (text === last) return;
      last = text;
      shown = true;
      process.stderr.write(`${text}\r`);
    },
    end() {
      if (shown) process.stderr.write('\n');
    },
  };
}

/** Whether to show progress: -p asks for it, -q forbids it, else only on a terminal. */
export function wantProgress(p: boolean | undefined, q: boolean | undefined): boolean {
  if (q) return false;
  return p === true || process.stderr.isTTY === true;
}
