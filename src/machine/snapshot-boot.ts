/**
 * The boot images in a snapshot: what a reboot of the restored machine loads again (the
 * kernel, initrd and firmware as they were given, not as the guest has since changed them in
 * RAM). The configuration record describes them (names, sizes, command line, firmware kind);
 * boot records carry their bytes in pieces of at most 4 MiB, image by image, right after it.
 * They are stored, not deflated: a kernel Image deflates at about 25 MB/s even with native
 * zlib at level 1 (1.4 s for Debian's 36 MB kernel, 4.5 s with fflate), while writing the
 * bytes as they are costs a checksum.
 */
import { RAM_MAX } from '../cpu/layout.ts';
import { StateReader } from '../devices/state.ts';
import { bad, encodeRecord, Rec, unpack, type Frame } from './snapshot-format.ts';
import type { BootOptions } from './virt.ts';

/** Bytes per boot record. */
const PIECE = 4 << 20;

/** The configuration's description of the boot images. */
export interface BootMeta {
  kernelName: string;
  append: string;
  /** `builtin`, `none`, or the firmware image's name. */
  firmware: { kind: 'builtin' | 'none' } | { kind: 'image'; name: string };
  /** Sizes of the images that follow: kernel, initrd (-1: none), firmware (-1: none). */
  sizes: [number, number, number];
}

/** The description of `o` for the configuration record. */
export function bootMeta(o: BootOptions): BootMeta {
  const fw = o.firmware;
  return {
    kernelName: o.kernelName,
    append: o.append ?? '',
    firmware: typeof fw === 'object' ? { kind: 'image', name: fw.name } : { kind: fw },
    sizes: [o.kernel.length, o.initrd?.length ?? -1, typeof fw === 'object' ? fw.bytes.length : -1],
  };
}

/** The boot records of `o`. */
export function* bootRecords(o: BootOptions): Generator<Uint8Array> {
  const images = [o.kernel, o.initrd, typeof o.firmware === 'object' ? o.firmware.bytes : undefined];
  for (let i = 0; i < images.length; i++) {
    const img = images[i];
    if (!img) continue;
    for (let at = 0; at < img.length; at += PIECE) yield encodeRecord(Rec.Boot, i, img.subarray(at, at + PIECE), false);
  }
}

/** Checks the configuration's boot description (untrusted). */
export function checkBootMeta(v: unknown, what: string): BootMeta {
  const r = new StateReader(`${what} boot`, v, ['kernelName', 'append', 'firmware', 'sizes']);
  const o = v as Record<string, unknown>;
  if (typeof o.kernelName !== 'string' || o.kernelName.length > 4096) r.fail('kernelName must be a string');
  if (typeof o.append !== 'string' || o.append.length > 4096) r.fail('append must be a string of at most 4096 characters');
  const fw = o.firmware as Record<string, unknown>;
  let firmware: BootMeta['firmware'];
  if (fw?.kind === 'builtin' || fw?.kind === 'none') {
    new StateReader(`${what} boot firmware`, fw, ['kind']);
    firmware = { kind: fw.kind };
  } else {
    const fr = new StateReader(`${what} boot firmware`, fw, ['kind', 'name']);
    if (fw.kind !== 'image' || typeof fw.name !== 'string') fr.fail('must be builtin, none, or an image with a name');
    firmware = { kind: 'image', name: fw.name as string };
  }
  const s = o.sizes as number[];
  if (!Array.isArray(s) || s.length !== 3 || !s.every((n) => Number.isInteger(n) && n >= -1 && n <= RAM_MAX) || s[0]! < 1) {
    r.fail('sizes must be three image sizes (the kernel at least 1 byte, -1 for no image) of at most 3 GiB');
  }
  if ((s[2]! >= 0) !== (firmware.kind === 'image')) r.fail('sizes disagree with the firmware');
  return { kernelName: o.kernelName as string, append: o.append as string, firmware, sizes: s as BootMeta['sizes'] };
}

/** Collects boot records as they come, then makes the boot options of the restored machine. */
export class BootCollector {
  private readonly pieces: Uint8Array[][] = [[], [], []];
  private readonly got = [0, 0, 0];

  constructor(
    private readonly meta: BootMeta,
    private readonly what: string,
  ) {}

  /** True when every image is complete (a record after that is out of place). */
  get complete(): boolean {
    return this.meta.sizes.every((n, i) => n < 0 || this.got[i] === n);
  }

  add(f: Frame, at: string): void {
    const i = f.arg;
    const want = this.meta.sizes[i];
    if (want === undefined || want < 0) bad(`${at} is for boot image ${i}, which the snapshot does not have`);
    if (this.pieces.some((p, k) => k > i && p.length > 0) || this.got[i]! + f.raw > want) bad(`${at} is out of place: the boot images are corrupt`);
    const b = unpack(f, at);
    this.pieces[i]!.push(b);
    this.got[i]! += b.length;
  }

  /** The boot options, once complete. */
  options(): BootOptions {
    if (!this.complete) bad(`${this.what} is corrupt: its boot images end early`);
    const join = (i: number): Uint8Array => {
      const out = new Uint8Array(this.meta.sizes[i]!);
      let o = 0;
      for (const p of this.pieces[i]!) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    };
    const m = this.meta;
    return {
      kernel: join(0),
      kernelName: m.kernelName,
      ...(m.sizes[1] >= 0 ? { initrd: join(1) } : {}),
      append: m.append,
      firmware: m.firmware.kind === 'image' ? { bytes: join(2), name: m.firmware.name } : m.firmware.kind,
    };
  }
}
