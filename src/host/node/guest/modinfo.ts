/**
 * Reading a Linux kernel module's `.modinfo` section: NUL-separated `key=value` strings
 * (name, depends, vermagic, alias, …) that modpost writes into every .ko. Debian's module
 * packages ship no modules.dep, so a module's own `depends=` is the dependency truth.
 *
 * Pure: works on the module's (decompressed) bytes; no host access.
 */
import { VirtusError } from '../../../util/errors.ts';

/** The .modinfo fields of one module; repeated keys (alias) keep every value in order. */
export type ModInfo = Map<string, string[]>;

/** Finds one section's bytes in an ELF file by name (ELF spec, "Sections"). */
export function elfSection(elf: Uint8Array, wanted: string, what = 'module'): Uint8Array | null {
  if (elf.length < 64 || elf[0] !== 0x7f || elf[1] !== 0x45 || elf[2] !== 0x4c || elf[3] !== 0x46) {
    throw new VirtusError('MODULE_NOT_ELF', `${what} is not an ELF file`);
  }
  const is64 = elf[4] === 2;
  const little = elf[5] === 1;
  if ((elf[4] !== 1 && !is64) || (elf[5] !== 1 && elf[5] !== 2)) {
    throw new VirtusError('MODULE_BAD_ELF', `${what}: unknown ELF class or byte order`);
  }
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const word = (o: number) => (is64 ? Number(v.getBigUint64(o, little)) : v.getUint32(o, little));
  const shoff = word(is64 ? 0x28 : 0x20);
  const shentsize = v.getUint16(is64 ? 0x3a : 0x2e, little);
  const shnum = v.getUint16(is64 ? 0x3c : 0x30, little);
  const shstrndx = v.getUint16(is64 ? 0x3e : 0x32, little);
  if (shoff + shnum * shentsize > elf.length || shstrndx >= shnum || shentsize < (is64 ? 64 : 40)) {
    throw new VirtusError('MODULE_BAD_ELF', `${what}: section headers lie outside the file`);
  }
  const header = (i: number) => {
    const h = shoff + i * shentsize;
    const offset = word(h + (is64 ? 0x18 : 0x10));
    const size = word(h + (is64 ? 0x20 : 0x14));
    const type = v.getUint32(h + 4, little);
    if (type !== 8 /* SHT_NOBITS */ && offset + size > elf.length) {
      throw new VirtusError('MODULE_BAD_ELF', `${what}: section ${i} lies outside the file`);
    }
    return { name: v.getUint32(h, little), offset, size, type };
  };
  const strtab = header(shstrndx);
  const names = elf.subarray(strtab.offset, strtab.offset + strtab.size);
  const target = new TextEncoder().encode(wanted + '\0');
  for (let i = 1; i < shnum; i++) {
    const s = header(i);
    if (s.name + target.length > names.length) continue;
    if (target.every((b, k) => names[s.name + k] === b)) {
      return s.type === 8 ? new Uint8Array(0) : elf.subarray(s.offset, s.offset + s.size);
    }
  }
  return null;
}

/** Parses the `.modinfo` section of a module. A module without one is refused. */
export function parseModinfo(ko: Uint8Array, what = 'module'): ModInfo {
  const sec = elfSection(ko, '.modinfo', what);
  if (!sec) throw new VirtusError('MODULE_NO_MODINFO', `${what} has no .modinfo section (not a kernel module?)`);
  const info: ModInfo = new Map();
  const text = new TextDecoder().decode(sec);
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue; // alignment padding between strings
    const key = entry.slice(0, eq);
    const list = info.get(key) ?? [];
    list.push(entry.slice(eq + 1));
    info.set(key, list);
  }
  return info;
}

/** The module names a module depends on (`depends=` is a comma-separated list, maybe empty). */
export function moduleDepends(info: ModInfo): string[] {
  return (info.get('depends') ?? []).flatMap((d) => d.split(',')).map((d) => d.trim()).filter(Boolean);
}

/** One value of a field, or undefined. */
export function modinfoField(info: ModInfo, key: string): string | undefined {
  return info.get(key)?.[0];
}

/**
 * A module's name as the kernel knows it from its file name: "virtio-rng.ko.xz" is
 * virtio_rng (Kbuild's KBUILD_MODNAME turns dashes into underscores).
 */
export function moduleNameOf(fileName: string): string {
  return fileName.replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');
}
