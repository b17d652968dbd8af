/**
 * The parsers of untrusted input under a short, seeded fuzz run (`npm run fuzz` runs longer):
 * every input that ever crashed one (fuzz/corpus/) runs first, then mutated inputs; anything
 * thrown that is not a VirtusError is a failure. The seed is fixed, so a failure repeats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz, loadTargets } from '../../fuzz/harness.ts';

const SEED = 20261207;
/** Inputs in all, shared among the targets: the bar for a CI run is 10^5. */
const TOTAL = 120_000;

const targets = await loadTargets();

test('there are fuzz targets', () => {
  assert.ok(targets.length > 0);
});

// Targets that name their own count take it; the others share what is left of the total.
const fixed = targets.filter((t) => t.iterations !== undefined);
const share = Math.ceil(Math.max(0, TOTAL - fixed.reduce((n, t) => n + t.iterations!, 0)) / Math.max(1, targets.length - fixed.length));

let runs = 0;
for (const t of targets) {
  test(`fuzz ${t.name}: nothing but refusals`, async () => {
    const r = await fuzz(t, { iterations: t.iterations ?? share, seed: SEED });
    runs += r.runs;
    const report = r.findings.map((f) => `${f.error.split('\n')[0]} (input of ${f.input.length} bytes)`).join('\n');
    assert.equal(r.findings.length, 0, `${t.name}: ${r.findings.length} crashes:\n${report}`);
  });
}

test('the run tried at least 10^5 inputs', () => {
  assert.ok(runs >= 100_000, `${runs} inputs`);
});
