/**
 * virtio-rng, the entropy device (virtio 1.2 §5.4): one request queue whose device-writable
 * buffers are filled with random bytes. Entropy comes from the host's crypto source
 * (`crypto.getRandomValues`, a global in Node and browsers); in deterministic mode from a
 * seeded generator instead, so that two runs see the same bytes (its state is saved).
 */
import { StateReader } from '../../state.ts';
import { eachWindow } from '../chain.ts';
import { DEVICE_ID, type VirtioContext, type VirtioCounters, type VirtioDevice } from '../types.ts';

export const RNG_QUEUE_SIZE = 64;
/** getRandomValues fills at most 64 KiB per call (Web Crypto's limit). */
const CRYPTO_CHUNK = 65536;
/** Bytes served per request at most (§5.4.6.2: the device may use less than the whole buffer). */
const MAX_PER_REQUEST = 1 << 20;

export interface RngOptions {
  name?: string;
  /** A seed for deterministic runs; without it the host's crypto source is used. */
  seed?: number;
}

/** Saved state: the generator's four words in deterministic mode (null with the host's source). */
export interface RngState {
  prng: number[] | null;
}

/**
 * xoshiro128** (Blackman and Vigna): small, fast, and good enough for reproducible test
 * entropy. Not for secrets: only deterministic runs use it.
 */
class Xoshiro128 {
  readonly s = new Uint32Array(4);

  constructor(seed: number) {
    // splitmix32 spreads the seed over the four words (never all zero).
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e37_79b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  next(): number {
    const s = this.s;
    const rotl = (v: number, k: number) => ((v << k) | (v >>> (32 - k))) >>> 0;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2] ^= s[0]!;
    s[3] ^= s[1]!;
    s[1] ^= s[2]!;
    s[0] ^= s[3]!;
    s[2] ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  fill(buf: Uint8Array): void {
    for (let i = 0; i < buf.length; i += 4) {
      const w = this.next();
      for (let k = 0; k < 4 && i + k < buf.length; k++) buf[i + k] = (w >>> (8 * k)) & 0xff;
    }
  }
}

export class VirtioRng implements VirtioDevice {
  readonly deviceId = DEVICE_ID.rng;
  readonly name: string;
  readonly features = 0n;
  readonly queueMax = [RNG_QUEUE_SIZE];
  readonly configSize = 0;
  private ctx: VirtioContext | null = null;
  private prng: Xoshiro128 | null;
  private readonly stats = { requests: 0, 'bytes served': 0 };

  constructor(o: RngOptions = {}) {
    this.name = o.name ?? 'virtio-rng0';
    this.prng = o.seed === undefined ? null : new Xoshiro128(o.seed);
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }

  readConfig(): number {
    return 0;
  }

  writeConfig(): void {}

  reset(): void {}

  counters(): VirtioCounters {
    return { ...this.stats };
  }

  private fill(view: Uint8Array): void {
    if (this.prng) {
      this.prng.fill(view);
      return;
    }
    // getRandomValues refuses views of shared memory in browsers: fill a private buffer and copy.
    for (let i = 0; i < view.length; i += CRYPTO_CHUNK) {
      const part = new Uint8Array(Math.min(CRYPTO_CHUNK, view.length - i));
      crypto.getRandomValues(part);
      view.set(part, i);
    }
  }

  notify(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queue(0);
    for (let c = q.pop(); c; c = q.pop()) {
      // §5.4.6.1: the driver must not offer device-readable buffers; they are ignored here.
      const n = Math.min(c.writeLen, MAX_PER_REQUEST);
      eachWindow(ctx.ram, c.writable, { n, write: true }, (view) => this.fill(view));
      this.stats.requests++;
      this.stats['bytes served'] += n;
      q.push(c, n);
    }
  }

  save(): RngState {
    return { prng: this.prng ? [...this.prng.s] : null };
  }

  restore(state: unknown): void {
    const r = new StateReader(this.name, state, ['prng']);
    const raw = (state as RngState).prng;
    if (raw === null) {
      if (this.prng) r.fail('prng is null but this device runs deterministically');
      return;
    }
    if (!this.prng) r.fail('prng state given but this device uses the host source');
    const words = r.uintArray('prng', 4, 0xffff_ffff);
    if (words.every((w) => w === 0)) r.fail('prng state must not be all zeros');
    this.prng!.s.set(words);
  }
}
