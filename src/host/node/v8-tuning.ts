/**
 * V8 settings for the translator, applied once at start-up by the Node host (the browser
 * keeps its own).
 *
 * V8 runs each WebAssembly function on its baseline compiler (Liftoff) first and recompiles it
 * with its optimizing compiler (TurboFan) once the function has run for a budget of roughly
 * that many bytes executed. TurboFan takes about 1 MB/s on translated guest code against
 * Liftoff's 35 MB/s (measured on 400 region modules from a Linux boot), and a region is a whole
 * guest page, so during a boot, where most code runs a few thousand times and then never again,
 * the default budget spends more time optimizing than it saves. The largest budget keeps
 * TurboFan for code that stays hot (loops, the kernel's hottest paths): on the default guest
 * it cut the time to the shell prompt from 32.3 s to 22.2 s while the CPU-bound program inside
 * Linux went from 2.68 s to 2.78 s (build/ scratch measurements; `npm run bench -- linux`).
 */
import { setFlagsFromString } from 'node:v8';

/** V8's wasm tiering budget (its default is 1 800 000); an int flag, so at most 2^31 - 1. */
export const WASM_TIERING_BUDGET = 1_800_000_000;

let done = false;

/** Raises V8's tier-up budget; call before the first region is compiled. */
export function tuneV8ForTranslator(): void {
  if (done) return;
  done = true;
  setFlagsFromString(`--wasm-tiering-budget=${WASM_TIERING_BUDGET}`);
}
