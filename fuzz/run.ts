/**
 * `npm run fuzz [-- NAME ...] [--iterations N] [--seed S] [--minutes M]`: fuzzes every target
 * in fuzz/targets/ (or those whose name contains NAME). Each crash is written to
 * build/fuzz/<target>/<sha256-prefix> with its error; copy it into fuzz/corpus/<target>/ once
 * the bug is fixed, so it runs in every `npm test`. Exit code 1 when anything crashed.
 *
 * `npm run fuzz -- --guest [NAME ...] [--seed S] [--accesses N] [--minutes M] [--engine E]`
 * runs the guest fuzzers instead (fuzz/guest.ts): programs attacking the monitor from inside
 * a machine, each in its own process; a finding prints the command that repeats it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz, iterationsFor, loadTargets } from './harness.ts';

const { values: v, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    iterations: { type: 'string', default: '200000' },
    seed: { type: 'string' },
    minutes: { type: 'string' },
    guest: { type: 'boolean' },
    accesses: { type: 'string', default: '5000000' },
    engine: { type: 'string', default: 'jit' },
  },
});
const iterations = Number(v.iterations);
const seed = v.seed !== undefined ? Number(v.seed) : Date.now() >>> 0;
const timeMs = v.minutes !== undefined ? Number(v.minutes) * 60_000 : undefined;
if (!Number.isInteger(iterations) || iterations < 0 || !Number.isFinite(seed) || (timeMs !== undefined && !(timeMs > 0))) {
  console.error('fuzz: --iterations and --seed take integers, --minutes a positive number');
  process.exit(2);
}

if (v.guest) {
  const accesses = Number(v.accesses);
  if (!Number.isInteger(accesses) || accesses <= 0 || (v.engine !== 'jit' && v.engine !== 'interp')) {
    console.error('fuzz: --accesses takes a positive integer, --engine jit or interp');
    process.exit(2);
  }
  const { fuzzGuests } = await import('./guest.ts');
  console.log(`fuzz: guest fuzzers, seed ${seed}`);
  const found = await fuzzGuests({ names: positionals, seed, accesses, engine: v.engine, log: (l) => console.log(l), ...(timeMs !== undefined ? { timeMs } : {}) });
  console.log(`fuzz: ${found} findings`);
  process.exit(found ? 1 : 0);
}

const targets = (await loadTargets()).filter((t) => positionals.length === 0 || positionals.some((p) => t.name.includes(p)));
if (!targets.length) {
  console.error('fuzz: no target matched');
  process.exit(2);
}
const out = join(new URL('..', import.meta.url).pathname, 'build', 'fuzz');
let crashes = 0;
let total = 0;
console.log(`fuzz: seed ${seed}, ${targets.length} targets`);
for (const t of targets) {
  const r = await fuzz(t, { iterations: iterationsFor(t, iterations, iterations), seed, ...(timeMs !== undefined ? { timeMs: timeMs / targets.length } : {}) });
  total += r.runs;
  console.log(`${t.name.padEnd(24)} ${String(r.runs).padStart(9)} inputs ${(r.ms / 1000).toFixed(1).padStart(7)} s  ${r.findings.length ? `${r.findings.length} CRASHES` : 'ok'}`);
  for (const f of r.findings) {
    crashes++;
    const id = createHash('sha256').update(f.input).digest('hex').slice(0, 16);
    const dir = join(out, t.name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, id), f.input);
    writeFileSync(join(dir, `${id}.txt`), f.error + '\n');
    console.log(`  ${join(dir, id)}: ${f.error.split('\n')[0]}`);
  }
}
console.log(`fuzz: ${total} inputs, ${crashes} crashes`);
process.exit(crashes ? 1 : 0);
