import { VirtusError } from './errors.ts';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Parses a size as QEMU does: a number with an optional K/M/G/T suffix (binary units), e.g.
 * `512M`, `1G`, `65536`. A bare number means bytes unless `defaultUnit` says otherwise
 * (QEMU's -m takes a bare number as MiB).
 */
export function parseSize(text: string, what: string, defaultUnit = ''): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtTbB]?)(?:i?[bB])?$/.exec(text.trim());
  if (!m) throw new VirtusError('BAD_SIZE', `${what}: "${text}" is not a size (examples: 512M, 2G, 65536)`);
  const unit = UNITS[(m[2] || defaultUnit).toLowerCase()]!;
  const v = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(v)) throw new VirtusError('BAD_SIZE', `${what}: "${text}" is too large`);
  return v;
}

/** Formats a byte count as QEMU-style binary units (e.g. `512 MiB`). */
export function formatSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1 && v % 1 === 0) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}
