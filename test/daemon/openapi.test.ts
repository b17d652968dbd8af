/**
 * The daemon's contract, docs/openapi.json: it is a valid OpenAPI 3.1 document (checked by
 * @seriousme/openapi-schema-validator against the OpenAPI 3.1 schemas), every operation has a
 * handler route, and its MachineSpec schema agrees with parseMachineSpec: specs one accepts the
 * other accepts, specs one refuses the other refuses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { openApiDoc, routes, standalone } from '../../src/host/node/daemon/openapi.ts';
import { parseMachineSpec } from '../../src/vmm/spec.ts';

const doc = openApiDoc();

describe('daemon: the OpenAPI document', () => {
  it('validates as OpenAPI 3.1', async () => {
    const v = new Validator();
    const r = await v.validate(doc as unknown as Parameters<Validator["validate"]>[0]);
    assert.equal(v.version, '3.1');
    assert.ok(r.valid, JSON.stringify(r.errors, null, 2));
  });

  it('names one operation per route, each with an operationId and error answers', () => {
    const ids = routes(doc).map((r) => r.operation.operationId);
    assert.equal(new Set(ids).size, ids.length);
    for (const r of routes(doc)) {
      if (Array.isArray(r.operation.security) && r.operation.security.length === 0) continue;
      assert.ok(r.operation.responses['401'], `${r.operation.operationId} documents 401`);
      if (r.url.includes(':id')) assert.ok(r.operation.responses['404'], `${r.operation.operationId} documents 404`);
    }
  });

  describe('MachineSpec agrees with parseMachineSpec', () => {
    const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
    ajv.addKeyword('x-websocket');
    const schema = ajv.compile(standalone({ $ref: '#/components/schemas/MachineSpec' }, doc));
    const k = { mode: 'builtin', kernel: '/boot/Image' };
    const disk = { file: '/d.img' };
    const valid: unknown[] = [
      { boot: k },
      { memory: 4096, boot: { mode: 'bare', kernel: 'x.elf' } },
      { memory: 3 * 1024 ** 3, harts: 1, deterministic: true, engine: 'interp', boot: { ...k, initrd: '/i', append: 'console=ttyS0' } },
      { boot: { mode: 'firmware', firmware: '/fw.bin' } },
      { boot: { mode: 'firmware', firmware: '/fw.bin', kernel: '/k' } },
      { boot: { kernel: '' } },
      { boot: k, devices: {} },
      { boot: k, devices: { console: 'virtio', disks: [disk, { ...disk, format: 'qcow2', serial: 'x'.repeat(20), overlay: '/o.qcow2', locking: false }] } },
      { boot: k, devices: { disks: [{ ...disk, readonly: true, serial: ' ~' }] } },
      { boot: k, devices: { shares: [{ path: '/srv', tag: 'host0', readonly: true }] } },
      { boot: k, devices: { nics: [{ backend: { type: 'user', hostfwd: [{ proto: 'tcp', hostPort: 2222, guestPort: 22 }] } }, { mac: '52:54:00:12:34:56', backend: { type: 'stream', addr: { type: 'unix', path: '/tmp/sw.sock' } } }] } },
      { boot: k, devices: { nics: [{ backend: { type: 'dgram', remote: { type: 'inet', host: '127.0.0.1', port: 6000 } } }, { backend: { type: 'user', net: '10.0.3.0', prefix: 24, restrict: true } }] } },
      { boot: k, devices: { disks: Array.from({ length: 8 }, () => disk) } },
      { boot: { ...k, append: 'a'.repeat(4096) } },
    ];
    const invalid: unknown[] = [
      null, [], 'spec', 42, {},
      { boot: k, extra: 1 },
      { boot: k, memory: 4095 }, { boot: k, memory: 4097 }, { boot: k, memory: 0 }, { boot: k, memory: 3 * 1024 ** 3 + 4096 }, { boot: k, memory: 1.5 },
      { boot: k, memory: '512M' }, { boot: k, harts: 2 }, { boot: k, harts: 0 }, { boot: k, deterministic: 'yes' }, { boot: k, engine: 'fast' },
      { boot: {} }, { boot: { mode: 'bare' } }, { boot: { mode: 'firmware' } }, { boot: { ...k, firmware: '/fw' } }, { boot: { ...k, mode: 'uefi' } },
      { boot: { ...k, append: 'a'.repeat(4097) } }, { boot: { ...k, kernel: 'a\0b' } }, { boot: { ...k, cmdline: 'x' } }, { boot: 'Image' },
      { boot: k, devices: [] }, { boot: k, devices: { console: 'vga' } }, { boot: k, devices: { gpus: [] } },
      { boot: k, devices: { disks: {} } }, { boot: k, devices: { disks: [{}] } }, { boot: k, devices: { disks: [{ file: '' }] } },
      { boot: k, devices: { disks: [{ ...disk, format: 'vmdk' }] } }, { boot: k, devices: { disks: [{ ...disk, serial: 'x'.repeat(21) }] } },
      { boot: k, devices: { disks: [{ ...disk, serial: 'tab\there' }] } }, { boot: k, devices: { disks: [{ ...disk, readonly: true, overlay: '/o' }] } },
      { boot: k, devices: { disks: [{ ...disk, overlay: '' }] } }, { boot: k, devices: { disks: [{ ...disk, size: 1 }] } },
      { boot: k, devices: { disks: Array.from({ length: 9 }, () => disk) } },
      { boot: k, devices: { shares: [{ path: '/srv' }] } }, { boot: k, devices: { shares: [{ path: '/srv', tag: 'has space' }] } },
      { boot: k, devices: { shares: [{ path: '/srv', tag: 'x'.repeat(65) }] } },
      { boot: k, devices: { nics: [{}] } }, { boot: k, devices: { nics: [{ backend: {} }] } }, { boot: k, devices: { nics: [{ backend: { type: '' } }] } },
      { boot: k, devices: { nics: [{ backend: { type: 'tap' } }] } }, { boot: k, devices: { nics: [{ backend: { type: 'user', dns: '10.0.2.300' } }] } },
      { boot: k, devices: { nics: [{ backend: { type: 'user', hostfwd: ['tcp::2222-:22'] } }] } }, { boot: k, devices: { nics: [{ backend: { type: 'dgram' } }] } },
      { boot: k, devices: { nics: [{ backend: { type: 'stream', addr: { type: 'vsock', cid: 3 } } }] } },
      { boot: k, devices: { nics: [{ backend: { type: 'user', hostfwd: [{ proto: 'tcp', hostPort: 2222, guestPort: 0 }] } }] } },
      { boot: k, devices: { nics: [{ mac: '53:54:00:12:34:56', backend: { type: 'user' } }] } },
      { boot: k, devices: { nics: [{ mac: '52:54:00:12:34:5G', backend: { type: 'user' } }] } },
      { boot: k, devices: { nics: [{ mac: '52:54:00:12:34:56', backend: { type: 'user' }, model: 'e1000' }] } },
    ];
    for (const [i, spec] of valid.entries()) {
      it(`accepts valid spec ${i}`, () => {
        assert.ok(schema(spec), `the schema refuses ${JSON.stringify(spec).slice(0, 200)}: ${ajv.errorsText(schema.errors)}`);
        assert.doesNotThrow(() => parseMachineSpec(spec));
      });
    }
    for (const [i, spec] of invalid.entries()) {
      it(`refuses invalid spec ${i}: ${JSON.stringify(spec)?.slice(0, 80)}`, () => {
        assert.equal(schema(spec), false, 'the schema refuses it');
        assert.throws(() => parseMachineSpec(spec), (e: Error & { code?: string }) => e.code === 'BAD_SPEC');
      });
    }
  });
});
