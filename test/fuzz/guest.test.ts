/**
 * The guest fuzzers (fuzz/guest.ts, test/guest/fuzz/) in a short seeded run: random MMIO on
 * every device of the virt board, malicious virtqueue chains on blk, console and rng, and
 * random SBI calls, each program in its own process with a time limit. The monitor must
 * neither throw, stall nor stop, and every device's state must restore; `npm run fuzz --
 * --guest` runs longer. The bar for a run: 10^6 guest-originated accesses.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { buildFuzzer, GUEST_FUZZERS, runIsolated } from '../../fuzz/guest.ts';

const SEED = 20261207;
/** Accesses per program, and the engine it runs under (both engines are covered). */
const PLAN: Record<string, { accesses: number; engine: 'interp' | 'jit' }> = {
  'guest-mmio': { accesses: 600_000, engine: 'interp' },
  'guest-virtq': { accesses: 300_000, engine: 'jit' },
  'guest-sbi': { accesses: 300_000, engine: 'jit' },
};

let total = 0;
const lines: string[] = [];
after(() => console.log(lines.map((l) => `# ${l}`).join('\n')));

test('every guest fuzzer has a plan', () => {
  assert.deepEqual(GUEST_FUZZERS.map((f) => f.name).sort(), Object.keys(PLAN).sort());
});

for (const f of GUEST_FUZZERS) {
  test(`${f.name}: the monitor survives seed ${SEED}`, async () => {
    buildFuzzer(f);
    const p = PLAN[f.name]!;
    const r = await runIsolated(f, { seed: SEED, ...p, limitMs: 180_000 });
    total += r.accesses;
    lines.push(`${f.name} (${r.engine}): ${r.accesses} accesses (${r.mmio} MMIO exits, ${r.sbiCalls} SBI calls) in ${(r.ms / 1000).toFixed(1)} s, longest slice ${r.longestSliceMs.toFixed(0)} ms, peak RSS ${Math.round((r.peakRssKiB ?? 0) / 1024)} MiB, ${r.deviceErrors} devices reset by their driver`);
    assert.deepEqual(r.findings, [], `repeat with: node --import tsx fuzz/guest-child.ts ${f.name} ${SEED} ${p.accesses} 0 ${p.engine}`);
    assert.ok(r.accesses >= p.accesses, `${r.accesses} accesses`);
  });
}

test('the run made at least 10^6 guest-originated accesses', () => {
  assert.ok(total >= 1_000_000, `${total} accesses`);
});
