/**
 * The cluster's records as read back from etcd (src/host/node/cluster/model.ts): anyone with
 * access to etcd can write them, so each parser takes any text. The first byte picks the
 * record's kind, the rest is its text. Refusing with a VirtusError is a correct answer; any
 * other throw is a crash.
 */
import {
  parseAssignment, parseCordon, parseMove, parseNode, parseObserved, parseRebalance, parseVm,
} from '../../src/host/node/cluster/model.ts';
import type { FuzzTarget } from '../harness.ts';

const PARSERS = [parseNode, parseVm, parseAssignment, parseMove, parseObserved, parseCordon, parseRebalance];
const T = '2026-12-07T04:00:00.000Z';

const SEEDS: Array<[number, unknown]> = [
  [0, { name: 'a', api: ['unix:/run/virtus.sock', 'tcp:10.0.0.1:7070'], address: '10.0.0.1', maxMemory: 268435456, usedMemory: 33554432, machines: 1, since: T }],
  [1, { name: 'w1', id: 'a1b2c3d4e5f6', spec: { memory: 33554432, boot: { mode: 'bare', kernel: '/srv/w.elf' }, devices: { disks: [{ file: '/srv/base.img', format: 'raw', overlay: '/srv/w1.qcow2' }], nics: [{ mac: '52:54:00:00:01:01', backend: { type: 'stream', addr: { type: 'unix', path: '/run/sw.sock' } } }] } }, restart: 'always', running: true, created: T, note: 'x' }],
  [2, { node: 'b', reason: 'failover', since: T }],
  [3, { id: '0a0b0c0d0e0f', from: 'a', to: 'b', reason: 'drain', status: 'ready', uri: 'tcp:127.0.0.1:4444', created: T }],
  [4, { state: 'running', since: T }],
  [5, { since: T, drain: false, drained: T, error: 'no other node has 64 MiB free for w1' }],
  [6, { threshold: 0.7, requested: T, status: 'pending', moves: 0 }],
];

export const target: FuzzTarget = {
  name: 'cluster',
  seeds: () => SEEDS.map(([kind, v]) => {
    const text = new TextEncoder().encode(JSON.stringify(v));
    const out = new Uint8Array(1 + text.length);
    out[0] = kind;
    out.set(text, 1);
    return out;
  }),
  run(input) {
    if (input.length === 0) return;
    const parse = PARSERS[input[0]! % PARSERS.length]!;
    parse(new TextDecoder().decode(input.subarray(1)), 'virtus/fuzz');
  },
};
