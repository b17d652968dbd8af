/**
 * `npm run bench [-- name ...]`: runs every bench/*.bench.ts (or those whose name contains one
 * of the arguments), prints one table and writes build/bench.json.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tuneV8ForTranslator } from '../src/host/node/v8-tuning.ts';
import { table, type Benchmark, type Row } from './harness.ts';

// The cpu benchmark runs machines in this process: the same V8 settings as `virtus run`.
tuneV8ForTranslator();

const dir = new URL('.', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).sort();
const results: Array<{ bench: string; rows: Row[] }> = [];
for (const f of files) {
  const mod = (await import(join(dir, f))) as { bench: Benchmark };
  if (filters.length && !filters.some((s) => mod.bench.name.includes(s) || f.includes(s))) continue;
  process.stderr.write(`bench: ${mod.bench.name}...\n`);
  const rows = await mod.bench.run();
  results.push({ bench: mod.bench.name, rows });
  console.log(`\n## ${mod.bench.name}${mod.bench.altLabel ? ` (alt = ${mod.bench.altLabel})` : ''}\n`);
  console.log(table(rows));
}
const out = join(dir, '../build');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'bench.json'), JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
