// Proves mount URIs and options are checked before anything is opened: canonical forms and the
// 1:1 default mount paths, clear EINVAL errors for bad URIs and option keys (with suggestions),
// and secrets masked whenever options are shown.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { FsError } from '../../src/common/errors.js';
import {
  defaultMountPath,
  maskUfsOptions,
  normaliseUfsPath,
  parseUfsUri,
  validateUfs,
} from '../../src/ufs/index.js';

function einval(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FsError, String(e));
    assert.equal(e.code, 'EINVAL');
    assert.match(e.message, pattern);
    return true;
  });
}

test('URIs parse to a canonical form and mount 1:1 by default', () => {
  const cases: [string, string, string][] = [
    ['s3://bucket/a', 's3://bucket/a', '/bucket/a'],
    ['s3://bucket/a/b/', 's3://bucket/a/b', '/bucket/a/b'],
    ['s3://bucket', 's3://bucket', '/bucket'],
    ['S3://bucket//x', 's3://bucket/x', '/bucket/x'],
    ['file:///data/set', 'file:///data/set', '/data/set'],
    ['file://localhost/data', 'file:///data', '/data'],
    ['http://example.com:8080/pub/x', 'http://example.com:8080/pub/x', '/example.com/pub/x'],
    ['https://cdn.example.com', 'https://cdn.example.com', '/cdn.example.com'],
    ['s3://bucket/with%20space', 's3://bucket/with space', '/bucket/with space'],
  ];
  for (const [input, canonical, mount] of cases) {
    const u = parseUfsUri(input);
    assert.equal(u.uri, canonical, input);
    assert.equal(defaultMountPath(u), mount, input);
  }
});

test('bad URIs are EINVAL naming what is allowed, and never echo credentials', () => {
  einval(() => parseUfsUri('hdfs://nn/x'), /unknown scheme "hdfs"/);
  einval(() => parseUfsUri('/just/a/path'), /expected s3:\/\/bucket/);
  einval(() => parseUfsUri('s3://'), /bucket name/);
  einval(() => parseUfsUri('file://host/x'), /no host/);
  einval(() => parseUfsUri('s3://b/a/../c'), /"\." and "\.\." are not allowed/);
  einval(() => parseUfsUri('http://h/x?y=1'), /query strings/);
  assert.throws(
    () => parseUfsUri('http://user:hunter2@host/x'),
    (e: unknown) =>
      e instanceof FsError && /credentials do not belong/.test(e.message) && !e.message.includes('hunter2'),
  );
});

test('option keys are checked per scheme, with suggestions; values are checked', () => {
  einval(() => validateUfs('s3://b', { 's3.endpoint': 'http://x' }), /did you mean s3\.endpoint_url\?/);
  einval(() => validateUfs('file:///x', { 's3.region_name': 'eu' }), /does not apply to file/);
  einval(() => validateUfs('s3://b', { 's3.force.path.style': 'maybe' }), /true or false/);
  einval(() => validateUfs('s3://b', { 's3.direct.get': 'sometimes' }), /s3\.direct\.get.*true or false/);
  einval(() => validateUfs('file:///x', { 's3.direct.get': 'false' }), /does not apply to file/);
  einval(() => validateUfs('s3://b', { 's3.part.size': '1MB' }), /from 5MB to 5GB/);
  einval(() => validateUfs('s3://b', { 's3.credentials.access': 'k' }), /go together/);
  einval(() => validateUfs('s3://b', { 'ufs.max_attempts': '0' }), /from 1 to 10/);
  einval(() => validateUfs('s3://b', { 's3.endpoint_url': 'ftp://x' }), /http:\/\/ or https:\/\//);
  einval(() => validateUfs('http://h', { 'http.header.Bad Name': 'x' }), /http\.header\.<Header-Name>/);
  validateUfs('s3://b/p', {
    's3.endpoint_url': 'http://127.0.0.1:9000',
    's3.region_name': 'eu-west-1',
    's3.credentials.access': 'AK',
    's3.credentials.secret': 'SK',
    's3.force.path.style': 'false',
    's3.direct.get': 'false',
    's3.part.size': '64MB',
    'ufs.request_timeout': '30s',
  });
  validateUfs('https://h/p', { 'http.header.Authorization': 'Bearer x', 'ufs.connect_timeout': '2s' });
});

test('a bad secret value is reported without showing it', () => {
  assert.throws(
    () =>
      validateUfs('s3://b', {
        's3.credentials.access': 'k',
        's3.credentials.secret': 's',
        's3.region_name': 'bad region!',
      }),
    (e: unknown) => e instanceof FsError && /s3\.region_name/.test(e.message),
  );
});

test('masking hides credentials and headers, keeps the rest', () => {
  const masked = maskUfsOptions({
    's3.endpoint_url': 'http://x',
    's3.credentials.access': 'AKIA123',
    's3.credentials.secret': 'topsecret',
    'http.header.Authorization': 'Bearer t',
    'some.future.password': 'p',
  });
  assert.deepEqual(masked, {
    's3.endpoint_url': 'http://x',
    's3.credentials.access': '***',
    's3.credentials.secret': '***',
    'http.header.Authorization': '***',
    'some.future.password': '***',
  });
});

test('UFS paths are normalised and checked', () => {
  assert.equal(normaliseUfsPath('/'), '/');
  assert.equal(normaliseUfsPath('//a//b/'), '/a/b');
  einval(() => normaliseUfsPath('a'), /must start with "\/"/);
  einval(() => normaliseUfsPath('/a/./b'), /not allowed/);
  einval(() => normaliseUfsPath('/a\0b'), /NUL/);
});
