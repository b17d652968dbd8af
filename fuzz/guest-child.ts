/**
 * One guest fuzz run in its own process (fuzz/guest.ts, runIsolated):
 *   node --import tsx fuzz/guest-child.ts NAME SEED ACCESSES TIME_MS ENGINE
 * prints the result as one line of JSON, with the process's peak resident memory.
 */
import { GUEST_FUZZERS, runGuestFuzzer } from './guest.ts';

const [name, seed, accesses, timeMs, engine] = process.argv.slice(2);
const f = GUEST_FUZZERS.find((g) => g.name === name);
if (!f || (engine !== 'interp' && engine !== 'jit')) {
  console.error(`guest-child: usage: NAME SEED ACCESSES TIME_MS interp|jit (names: ${GUEST_FUZZERS.map((g) => g.name).join(', ')})`);
  process.exit(2);
}
const r = await runGuestFuzzer(f, { seed: Number(seed), accesses: Number(accesses), ...(Number(timeMs) > 0 ? { timeMs: Number(timeMs) } : {}), engine });
r.peakRssKiB = process.resourceUsage().maxRSS;
console.log(JSON.stringify(r));
