/**
 * The parsers of untrusted input under a short, seeded fuzz run (`npm run fuzz` runs longer):
 * every input that ever crashed one (fuzz/corpus/) runs first, then mutated inputs; anything
 * thrown that is not a VirtusError is a failure. The seed is fixed, so a failure repeats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz, iterationsFor, loadTargets, SHORT_RUN_INPUTS } from '../../fuzz/harness.ts';

const SEED = 20261207;

const targets = await loadTargets();
/** The parsers share SHORT_RUN_INPUTS; slower targets (guest-side ones) bring their own count. */
const parsers = targets.filter((t) => t.iterations === undefined);
const perParser = Math.ceil(SHORT_RUN_INPUTS / Math.max(1, parsers.length));

test('there are fuzz targets', () => {
  assert.ok(targets.length > 0);
});

let runs = 0;
for (const t of targets) {
  test(`fuzz ${t.name}: nothing but refusals`, async () => {
    const r = await fuzz(t, { iterations: iterationsFor(t, perParser, SHORT_RUN_INPUTS), seed: SEED });
    if (t.iterations === undefined) runs += r.runs;
    const report = r.findings.map((f) => `${f.error.split('\n')[0]} (input of ${f.input.length} bytes)`).join('\n');
    assert.equal(r.findings.length, 0, `${t.name}: ${r.findings.length} crashes:\n${report}`);
  });
}

test('the parsers were tried with at least 10^5 inputs', () => {
  assert.ok(runs >= 100_000, `${runs} inputs`);
});
