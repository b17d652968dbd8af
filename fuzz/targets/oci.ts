/**
 * The OCI documents virtus reads from registries and from its store (src/repo): image
 * manifests, machine configs (checked against their manifest), the store's index.json, and
 * registries' WWW-Authenticate challenges. Seeds are valid documents; mutations break their
 * JSON and their fields.
 */
import { checkMachineManifest, jsonBytes, layerMediaType, MACHINE_ARTIFACT, MACHINE_CONFIG, OCI_INDEX, OCI_MANIFEST, parseMachineConfig, parseManifest, type Manifest } from '../../src/repo/artifact.ts';
import { parseChallenges } from '../../src/repo/auth.ts';
import { parseStoreIndex } from '../../src/repo/store.ts';
import type { FuzzTarget } from '../harness.ts';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;

const manifest: Manifest = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  artifactType: MACHINE_ARTIFACT,
  config: { mediaType: MACHINE_CONFIG, digest: digest('c'), size: 412 },
  layers: [
    { mediaType: layerMediaType('kernel', 'gzip'), digest: digest('a'), size: 13263344, annotations: { 'org.opencontainers.image.title': 'kernel.gz' } },
    { mediaType: layerMediaType('initrd', 'zstd'), digest: digest('b'), size: 1000 },
    { mediaType: layerMediaType('disk', 'none', 'qcow2'), digest: digest('d'), size: 196616 },
  ],
  annotations: { 'org.opencontainers.image.created': '2026-01-31T12:00:00Z' },
};

const config = {
  schemaVersion: 1,
  architecture: 'riscv64',
  board: 'virt',
  memory: 536870912,
  cmdline: 'console=ttyS0',
  layers: [
    { role: 'kernel', uncompressedDigest: digest('1'), uncompressedSize: 36652544 },
    { role: 'initrd', uncompressedDigest: digest('2'), uncompressedSize: 10895108 },
    { role: 'disk', uncompressedDigest: digest('d'), uncompressedSize: 196616, format: 'qcow2', virtualSize: 67108864 },
  ],
};

const index = {
  schemaVersion: 2,
  mediaType: OCI_INDEX,
  manifests: [
    { mediaType: OCI_MANIFEST, artifactType: MACHINE_ARTIFACT, digest: digest('e'), size: 900, annotations: { 'org.opencontainers.image.ref.name': 'default:latest', 'org.opencontainers.image.created': '2026-01-31T12:00:00Z' } },
    { mediaType: OCI_MANIFEST, digest: digest('f'), size: 10, annotations: {} },
  ],
};

const text = new TextDecoder();

export const targets: FuzzTarget[] = [
  {
    name: 'oci-manifest',
    seeds: () => [jsonBytes(manifest), jsonBytes({ ...manifest, mediaType: OCI_INDEX, manifests: [] }), jsonBytes({ schemaVersion: 2, config: manifest.config, layers: [] })],
    run(input) {
      const m = parseManifest(input, 'fuzz');
      checkMachineManifest(m, 'fuzz');
    },
  },
  {
    name: 'oci-config',
    seeds: () => [jsonBytes(config), jsonBytes({ ...config, memory: undefined, cmdline: undefined })],
    run(input) {
      parseMachineConfig(input, manifest, 'fuzz');
    },
  },
  {
    name: 'oci-index',
    seeds: () => [jsonBytes(index), jsonBytes({ schemaVersion: 2, manifests: [] })],
    run(input) {
      parseStoreIndex(text.decode(input), 'fuzz');
    },
  },
  {
    name: 'oci-auth-challenge',
    seeds: () => [
      new TextEncoder().encode('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:me/x:pull"'),
      new TextEncoder().encode('Basic realm="Registry Realm", Bearer realm="http://127.0.0.1/token",error="invalid_token",error_description="a \\"quoted\\" word"'),
    ],
    run(input) {
      parseChallenges(text.decode(input));
    },
  },
];
