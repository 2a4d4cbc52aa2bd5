import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitArgs } from '../../src/util/argv.js';
import { cpuToNano, memoryToBytes, parseDuration } from '../../src/util/units.js';
import { didYouMean } from '../../src/util/suggest.js';
import { redactUrl } from '../../src/source/git.js';

describe('utilities', () => {
  it('splits command lines without a shell', () => {
    assert.deepEqual(splitArgs('nginx -p "/tmp/a b" -c \'x y\' -t'), ['nginx', '-p', '/tmp/a b', '-c', 'x y', '-t']);
    assert.deepEqual(splitArgs('docker exec nginx nginx -s reload'), ['docker', 'exec', 'nginx', 'nginx', '-s', 'reload']);
    assert.throws(() => splitArgs('a "b'), /unbalanced/);
  });
  it('converts resources the way docker run does', () => {
    assert.equal(cpuToNano('500m'), 500_000_000);
    assert.equal(cpuToNano('1.5'), 1_500_000_000);
    assert.equal(memoryToBytes('256Mi'), 256 * 1024 * 1024);
    assert.equal(memoryToBytes('512m'), 512 * 1024 * 1024);
    assert.equal(memoryToBytes('1g'), 1024 ** 3);
    assert.equal(memoryToBytes('100'), 100);
  });
  it('parses durations', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.throws(() => parseDuration('5 minutes'), /invalid duration/);
  });
  it('strips credentials from Git URLs before they are shown anywhere', () => {
    assert.equal(redactUrl('https://ci:s3cr3t@git.example.com/ops/deploy.git'), 'https://git.example.com/ops/deploy.git');
    assert.equal(redactUrl('https://token@git.example.com/x.git'), 'https://git.example.com/x.git');
    assert.equal(redactUrl('http://127.0.0.1:8080/deploy.git'), 'http://127.0.0.1:8080/deploy.git');
  });

  it('suggests close names, transpositions included', () => {
    assert.equal(didYouMean('replcas', ['replicas', 'image']), 'replicas');
    assert.equal(didYouMean('wbe', ['web', 'api']), 'web');
    assert.equal(didYouMean('zzz', ['web', 'api']), undefined);
  });
});
