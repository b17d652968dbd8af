/**
 * The machine image as an OCI artifact (image-spec 1.1, manifest.md "Guidelines for Artifact
 * Usage", case 3: an artifact with a config blob): an image manifest whose `artifactType` is
 * ours, a small JSON config blob of our own media type, and one layer per file of the machine.
 *
 *   artifactType        application/vnd.virtus.machine.v1
 *   config              application/vnd.virtus.machine.config.v1+json   (MachineConfig)
 *   layers              application/vnd.virtus.machine.kernel.v1[+gzip|+zstd]
 *                       application/vnd.virtus.machine.initrd.v1[+gzip|+zstd]
 *                       application/vnd.virtus.machine.disk.{raw,qcow2}.v1[+gzip|+zstd]
 *
 * The `+gzip`/`+zstd` suffixes say how a layer blob is compressed (RFC 6839 structured
 * suffixes, as image-spec layer.md uses them); virtus writes gzip and reads both. Every
 * manifest and config read here comes from a registry or from disk and is validated as
 * untrusted input before anything acts on it.
 */
import { VirtusError } from '../util/errors.ts';
import { DIGEST_RE } from './digest.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MACHINE_ARTIFACT = 'application/vnd.virtus.machine.v1';
export const MACHINE_CONFIG = 'application/vnd.virtus.machine.config.v1+json';
/** Registries must accept manifests of at least 4 MB (distribution-spec, "Pushing Manifests"); ours are tiny. */
export const MAX_MANIFEST = 4 * 2 ** 20;
/** Our config is a few hundred bytes; anything near this is not ours. */
export const MAX_CONFIG = 2 ** 20;

/** Annotation keys (image-spec annotations.md). */
export const ANNOTATION = {
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
  refName: 'org.opencontainers.image.ref.name',
} as const;

export type Role = 'kernel' | 'initrd' | 'disk';
export type DiskFormat = 'raw' | 'qcow2';
export type Compression = 'none' | 'gzip' | 'zstd';

/** An OCI content descriptor (image-spec descriptor.md), the fields virtus uses. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** An OCI image manifest (image-spec manifest.md). */
export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** What the config says about one layer (the same index in the manifest's `layers`). */
export interface LayerInfo {
  role: Role;
  /** The digest and size of the layer's content once decompressed (the blob itself when not compressed). */
  uncompressedDigest: string;
  uncompressedSize: number;
  /** Disks: the format and the size the guest sees. */
  format?: DiskFormat;
  virtualSize?: number;
}

/** The config blob: how to boot the machine. Version 1. */
export interface MachineConfig {
  schemaVersion: 1;
  architecture: 'riscv64';
  /** The board the image was made for; virtus has QEMU's "virt" layout. */
  board: 'virt';
  /** Guest RAM in bytes; virtus run's default when absent. */
  memory?: number;
  /** The kernel command line. */
  cmdline?: string;
  /** Which disk (counting disk layers from 0) holds the root file system: the guest gets root=/dev/vda for disk 0. */
  rootDisk?: number;
  /** One entry per manifest layer, in the same order: which layer is which. */
  layers: LayerInfo[];
}

/** A layer's media type: role, disk format, compression. */
export function layerMediaType(role: Role, compression: Compression, format?: DiskFormat): string {
  const base = role === 'disk' ? `application/vnd.virtus.machine.disk.${format ?? 'raw'}.v1` : `application/vnd.virtus.machine.${role}.v1`;
  return compression === 'none' ? base : `${base}+${compression}`;
}

/** The role, format and compression a layer media type names; null when it is not one of ours. */
export function parseLayerMediaType(mt: string): { role: Role; format?: DiskFormat; compression: Compression } | null {
  const m = /^application\/vnd\.virtus\.machine\.(kernel|initrd|disk\.raw|disk\.qcow2)\.v1(?:\+(gzip|zstd))?$/.exec(mt);
  if (!m) return null;
  const compression = (m[2] ?? 'none') as Compression;
  if (m[1]!.startsWith('disk.')) return { role: 'disk', format: m[1]!.slice(5) as DiskFormat, compression };
  return { role: m[1] as Role, compression };
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isSize = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function bad(what: string, why: string): VirtusError {
  return new VirtusError('BAD_MANIFEST', `${what}: ${why}`);
}

function parseAnnotations(x: unknown, what: string): Record<string, string> | undefined {
  if (x === undefined) return undefined;
  if (!isObject(x) || !Object.values(x).every((v) => typeof v === 'string')) throw bad(what, 'annotations must map strings to strings');
  return x as Record<string, string>;
}

/** Validates a descriptor (image-spec descriptor.md: mediaType, digest and size are required). */
export function parseDescriptor(x: unknown, what: string): Descriptor {
  if (!isObject(x)) throw bad(what, 'a descriptor must be an object');
  if (typeof x.mediaType !== 'string' || x.mediaType === '') throw bad(what, 'descriptor without a mediaType');
  if (typeof x.digest !== 'string' || !DIGEST_RE.test(x.digest)) throw bad(what, `descriptor digest ${JSON.stringify(x.digest)} is not a sha256 digest`);
  if (!isSize(x.size)) throw bad(what, `descriptor size ${JSON.stringify(x.size)} is not a byte count`);
  const annotations = parseAnnotations(x.annotations, what);
  return {
    mediaType: x.mediaType,
    digest: x.digest,
    size: x.size,
    ...(typeof x.artifactType === 'string' ? { artifactType: x.artifactType } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw bad(what, 'not valid JSON');
  }
}

/** Parses and validates an image manifest; an index or a Docker manifest is refused by name. */
export function parseManifest(bytes: Uint8Array, what: string): Manifest {
  if (bytes.length > MAX_MANIFEST) throw bad(what, `manifest of ${bytes.length} bytes is larger than ${MAX_MANIFEST}`);
  const x = parseJson(bytes, what);
  if (!isObject(x)) throw bad(what, 'a manifest must be a JSON object');
  if (x.mediaType === OCI_INDEX || x.mediaType === DOCKER_LIST || Array.isArray(x.manifests)) {
    throw bad(what, 'is an image index (a list of images, e.g. per platform), not a machine image');
  }
  if (x.mediaType === DOCKER_MANIFEST) throw bad(what, 'is a Docker container image, not a virtus machine image');
  if (x.mediaType !== undefined && x.mediaType !== OCI_MANIFEST) throw bad(what, `unexpected manifest mediaType ${JSON.stringify(x.mediaType)}`);
  if (x.schemaVersion !== 2) throw bad(what, `schemaVersion must be 2, not ${JSON.stringify(x.schemaVersion)}`);
  if (!Array.isArray(x.layers)) throw bad(what, 'manifest without a layers array');
  const annotations = parseAnnotations(x.annotations, what);
  return {
    schemaVersion: 2,
    ...(x.mediaType !== undefined ? { mediaType: OCI_MANIFEST } : {}),
    ...(typeof x.artifactType === 'string' ? { artifactType: x.artifactType } : {}),
    config: parseDescriptor(x.config, `${what} (config)`),
    layers: x.layers.map((l, i) => parseDescriptor(l, `${what} (layer ${i})`)),
    ...(annotations ? { annotations } : {}),
  };
}

/** Refuses a manifest that is not a virtus machine image (checked before fetching its layers). */
export function checkMachineManifest(m: Manifest, what: string): void {
  // image-spec: tools should fall back to config.mediaType when artifactType is absent.
  const type = m.artifactType ?? m.config.mediaType;
  if (type !== MACHINE_ARTIFACT && m.config.mediaType !== MACHINE_CONFIG) {
    throw new VirtusError('NOT_A_MACHINE', `${what} is not a virtus machine image (its type is ${type})`);
  }
  if (m.config.mediaType !== MACHINE_CONFIG) throw bad(what, `config mediaType ${m.config.mediaType} is not ${MACHINE_CONFIG}`);
  if (m.config.size > MAX_CONFIG) throw bad(what, `config of ${m.config.size} bytes is too large`);
  m.layers.forEach((l, i) => {
    if (!parseLayerMediaType(l.mediaType)) throw bad(what, `layer ${i} has media type ${l.mediaType}, which virtus does not know`);
  });
}

/** Parses a machine config and checks it against its manifest's layers. */
export function parseMachineConfig(bytes: Uint8Array, m: Manifest, what: string): MachineConfig {
  const x = parseJson(bytes, what);
  if (!isObject(x)) throw bad(what, 'the machine config must be a JSON object');
  if (x.schemaVersion !== 1) throw bad(what, `machine config schemaVersion ${JSON.stringify(x.schemaVersion)} is not 1 (made by a newer virtus?)`);
  if (x.architecture !== 'riscv64') throw bad(what, `architecture ${JSON.stringify(x.architecture)} is not riscv64`);
  if (x.board !== 'virt') throw bad(what, `board ${JSON.stringify(x.board)} is not virt`);
  if (x.memory !== undefined && (!isSize(x.memory) || x.memory === 0)) throw bad(what, 'memory must be a positive byte count');
  if (x.cmdline !== undefined && typeof x.cmdline !== 'string') throw bad(what, 'cmdline must be a string');
  if (x.rootDisk !== undefined && (!Number.isInteger(x.rootDisk) || (x.rootDisk as number) < 0 || (x.rootDisk as number) > 7)) throw bad(what, 'rootDisk must be a disk number from 0 to 7');
  if (!Array.isArray(x.layers) || x.layers.length !== m.layers.length) throw bad(what, 'the config must describe each manifest layer, in order');
  const layers = x.layers.map((l: unknown, i: number): LayerInfo => {
    const w = `${what} (layer ${i})`;
    const mt = parseLayerMediaType(m.layers[i]!.mediaType);
    if (!isObject(l) || !mt) throw bad(w, 'not a layer description');
    if (l.role !== mt.role) throw bad(w, `role ${JSON.stringify(l.role)} does not match media type ${m.layers[i]!.mediaType}`);
    if (typeof l.uncompressedDigest !== 'string' || !DIGEST_RE.test(l.uncompressedDigest)) throw bad(w, 'uncompressedDigest is not a sha256 digest');
    if (!isSize(l.uncompressedSize)) throw bad(w, 'uncompressedSize is not a byte count');
    if (mt.compression === 'none' && (l.uncompressedDigest !== m.layers[i]!.digest || l.uncompressedSize !== m.layers[i]!.size)) {
      throw bad(w, 'an uncompressed layer must have the digest and size of its blob');
    }
    const info: LayerInfo = { role: mt.role, uncompressedDigest: l.uncompressedDigest, uncompressedSize: l.uncompressedSize };
    if (mt.role === 'disk') {
      if (l.format !== mt.format) throw bad(w, `disk format ${JSON.stringify(l.format)} does not match media type ${m.layers[i]!.mediaType}`);
      if (!isSize(l.virtualSize)) throw bad(w, 'a disk needs its virtualSize');
      info.format = mt.format!;
      info.virtualSize = l.virtualSize;
    }
    return info;
  });
  for (const role of ['kernel', 'initrd'] as const) {
    if (layers.filter((l) => l.role === role).length > 1) throw bad(what, `more than one ${role} layer`);
  }
  const config: MachineConfig = {
    schemaVersion: 1,
    architecture: 'riscv64',
    board: 'virt',
    ...(x.memory !== undefined ? { memory: x.memory as number } : {}),
    ...(x.cmdline !== undefined ? { cmdline: x.cmdline as string } : {}),
    ...(x.rootDisk !== undefined ? { rootDisk: x.rootDisk as number } : {}),
    layers,
  };
  if (config.rootDisk !== undefined && config.rootDisk >= layers.filter((l) => l.role === 'disk').length) throw bad(what, `rootDisk ${config.rootDisk} names a disk the image does not have`);
  return config;
}

/** Canonical bytes for a JSON document we write (manifest, config): stable key order as built. */
export function jsonBytes(x: unknown): Buffer {
  return Buffer.from(JSON.stringify(x), 'utf8');
}
