/** Reading the host's apt sources and apt-cache's answers (no network). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStanza } from '../../src/host/node/guest/apt.ts';
import { mirrorCandidates, parseDeb822, parseOneLine } from '../../src/host/node/guest/sources.ts';

test('guest sources: deb822 stanzas, with security, disabled and source entries left out of the candidates', () => {
  const text = [
    'Types: deb',
    '# a comment',
    'URIs: http://mirror.example/debian https://other.example/debian/',
    'Suites: bookworm bookworm-updates',
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
    'Types: deb',
    'URIs: http://mirror.example/debian-security',
    'Suites: bookworm-security',
    'Components: main',
    '',
    'Types: deb-src',
    'URIs: http://src.example/debian',
    'Suites: bookworm',
    '',
    'Types: deb',
    'URIs: http://off.example/debian',
    'Suites: sid',
    'Enabled: no',
    '',
    'Types: deb',
    'URIs: http://inline-key.example/debian',
    'Suites: trixie',
    'Signed-By:',
    ' -----BEGIN PGP PUBLIC KEY BLOCK-----',
    ' .',
    ' -----END PGP PUBLIC KEY BLOCK-----',
  ].join('\n');
  const all = parseDeb822(text, 'x.sources');
  assert.deepEqual(all.map((s) => s.uri), [
    'http://mirror.example/debian', 'https://other.example/debian/', 'http://mirror.example/debian-security', 'http://inline-key.example/debian',
  ]);
  assert.equal(all[0]!.signedBy, '/usr/share/keyrings/debian-archive-keyring.gpg');
  assert.equal(all[3]!.signedBy, undefined, 'an inline key is not a keyring path');
  assert.deepEqual(mirrorCandidates(all).map((s) => s.uri), [
    'http://mirror.example/debian', 'https://other.example/debian', 'http://inline-key.example/debian',
  ]);
});

test('guest sources: one-line entries', () => {
  const text = [
    '# deb http://commented.example/debian sid main',
    'deb [arch=amd64 signed-by=/etc/apt/keyrings/k.gpg] http://mirror.example/debian bookworm main contrib',
    'deb-src http://mirror.example/debian bookworm main',
    'deb http://mirror.example/debian/ bookworm-updates main',
    'deb cdrom:[Debian 12]/ bookworm main',
    'deb http://security.example/debian-security bookworm-security main',
  ].join('\n');
  const all = parseOneLine(text, 'sources.list');
  assert.equal(all.length, 4);
  assert.equal(all[0]!.signedBy, '/etc/apt/keyrings/k.gpg');
  assert.deepEqual(mirrorCandidates(all).map((s) => s.uri), ['http://mirror.example/debian']);
});

test('guest apt: a package stanza, with alternatives and version constraints in Depends', () => {
  const text = [
    'Package: linux-image-9.9.9+deb99-riscv64',
    'Version: 9.9.9-1',
    'Depends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-binary-9.9.9+deb99-riscv64 (= 9.9.9-1), linux-modules-9.9.9+deb99-riscv64:riscv64 (= 9.9.9-1)',
    'Description: Linux',
    ' for 64-bit RISC-V platforms',
    'Filename: pool/main/l/linux/linux-image-9.9.9+deb99-riscv64_9.9.9-1_riscv64.deb',
    'Size: 1876',
    'SHA256: 2c10d3c335ee8dfdd88d7303fb663dcdb337246ab126ad5cab156403bceda04e',
    '',
    'Package: second-stanza-ignored',
  ].join('\n');
  const p = parseStanza(text)!;
  assert.equal(p.name, 'linux-image-9.9.9+deb99-riscv64');
  assert.equal(p.size, 1876);
  assert.deepEqual(p.depends, [
    ['dracut', 'initramfs-tools', 'linux-initramfs-tool'],
    ['linux-binary-9.9.9+deb99-riscv64'],
    ['linux-modules-9.9.9+deb99-riscv64'],
  ]);
  assert.equal(parseStanza('Package: x\n'), null);
});
