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
/**
 * Bytes served per request at most (§5.4.6.2: the device may use less than the whole
 * buffer); each is charged to the turn's credit (types.ts), so a queue of huge buffers is
 * served over several turns.
 */
const MAX_PER_REQUEST = 64 << 10;

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
  /** The four state words, as signed 32-bit values (V8 keeps them unboxed). */
  private readonly w = new Int32Array(4);

  constructor(seed: number) {
    // splitmix32 spreads the seed over the four words (never all zero).
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e37_79b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35);
      this.w[i] = z ^ (z >>> 16);
    }
    if (this.w.every((v) => v === 0)) this.w[0] = 1;
  }

  /** The state as unsigned words (saved state). */
  get state(): number[] {
    return Array.from(this.w, (v) => v >>> 0);
  }

  set state(words: readonly number[]) {
    this.w.set(words.map((v) => v | 0));
  }

  fill(buf: Uint8Array): void {
    const w = this.w;
    let s0 = w[0]!;
    let s1 = w[1]!;
    let s2 = w[2]!;
    let s3 = w[3]!;
    for (let i = 0; i < buf.length; i += 4) {
      const m = Math.imul(s1, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      buf[i] = r;
      if (i + 1 < buf.length) buf[i + 1] = r >>> 8;
      if (i + 2 < buf.length) buf[i + 2] = r >>> 16;
      if (i + 3 < buf.length) buf[i + 3] = r >>> 24;
    }
    w[0] = s0;
    w[1] = s1;
    w[2] = s2;
    w[3] = s3;
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
      ctx.spend(n);
      this.stats.requests++;
      this.stats['bytes served'] += n;
      q.push(c, n);
    }
  }

  save(): RngState {
    return { prng: this.prng ? this.prng.state : null };
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
    this.prng!.state = words;
  }
}
