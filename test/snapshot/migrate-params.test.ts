/**
 * Migration settings virtus cannot honour are refused by name, never accepted and ignored:
 * features it lacks, and post-copy with compression (as QEMU refuses it); QEMU's answers for the rest are compared
 * in test/cli/qmp-migrate.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultSettings, setCapabilities, setParameters } from '../../src/machine/migrate-params.ts';

describe('migration settings', () => {
  it('refuses post-copy with compression and features virtus lacks with one line naming them', () => {
    const s = defaultSettings();
    assert.equal(setCapabilities(s.capabilities, [{ capability: 'postcopy-ram', state: true }])['postcopy-ram'], true);
    assert.throws(() => setCapabilities(s.capabilities, [{ capability: 'postcopy-ram', state: true }, { capability: 'compress', state: true }]), {
      code: 'MIGRATE_PARAMETER', message: 'Postcopy is not currently compatible with compression',
    });
    assert.throws(() => setCapabilities(s.capabilities, [{ capability: 'multifd', state: true }]), { message: "virtus does not support the migration capability 'multifd'" });
    assert.throws(() => setParameters(s.parameters, { 'multifd-channels': 4 }), { message: "Parameter 'multifd-channels': virtus has no multifd for migrations; it keeps 2" });
    // Turning an unsupported capability off is what QEMU's default already is: accepted.
    assert.equal(setCapabilities(s.capabilities, [{ capability: 'multifd', state: false }]).multifd, false);
    assert.equal(setParameters(s.parameters, { 'max-bandwidth': -1 })['max-bandwidth'], 2 ** 64 - 1);
  });
});
