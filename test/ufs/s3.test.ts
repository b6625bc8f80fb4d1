// Proves the s3:// engine passes the UFS conformance suite against s3rver (a real S3 server on
// loopback, no mocks), and that bad credentials, a missing bucket, an unreachable endpoint and a
// connection cut mid-read are clear FsErrors that never show the secret.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { FsError } from '../../src/common/errors.js';
import { openUfs } from '../../src/ufs/index.js';
import { freePort } from '../helpers/ports.js';
import { readAll, ufsConformance } from './conformance.js';
import type { UfsFixture } from './conformance.js';
import { S3Server } from './s3-server.js';

function rawClient(server: S3Server): S3Client {
  return server.client();
}

/** The conformance fixture on a fresh s3rver; `extra` are more mount options. */
function s3Fixture(extra: Record<string, string>): () => Promise<UfsFixture> {
  return async () => {
    const server = await S3Server.start(['conf']);
    const raw = rawClient(server);
    const prefix = 'base/pre';
    const ufs = openUfs(`s3://conf/${prefix}`, server.options({ 's3.part.size': '5MB', ...extra }));
    return {
      ufs,
      bigWriteBytes: 12 * 1024 * 1024,
      async put(path, data) {
        await raw.send(new PutObjectCommand({ Bucket: 'conf', Key: `${prefix}${path}`, Body: data }));
      },
      async get(path) {
        try {
          const r = await raw.send(new GetObjectCommand({ Bucket: 'conf', Key: `${prefix}${path}` }));
          return Buffer.from(await r.Body!.transformToByteArray());
        } catch {
          return undefined;
        }
      },
      async close() {
        raw.destroy();
        await ufs.close();
        await server.stop();
      },
    };
  };
}

// Object GETs go out directly (signed, without the SDK's middleware) by default; the same suite
// again with them through the SDK, the path every direct GET that fails falls back to.
ufsConformance('s3:// (s3rver)', s3Fixture({}));
ufsConformance('s3:// (s3rver, GETs through the SDK)', s3Fixture({ 's3.direct.get': 'false' }));

const SECRET = 'sEcReT-never-printed-0123456789';

test('s3://: an unknown access key is EACCES naming the problem, never the secret', async (t) => {
  const server = await S3Server.start(['b']);
  t.after(() => server.stop());
  const ufs = openUfs('s3://b', {
    ...server.options(),
    's3.credentials.access': 'NOT-A-KEY',
    's3.credentials.secret': SECRET,
  });
  t.after(() => ufs.close());
  await assert.rejects(ufs.check(), (e: unknown) => {
    assert.ok(e instanceof FsError);
    assert.equal(e.code, 'EACCES');
    assert.match(e.message, /access denied/);
    assert.match(e.message, /access key id is not known/);
    assert.match(e.message, /s3\.credentials\.access/);
    assert.ok(!e.message.includes(SECRET) && !JSON.stringify(e.toJSON()).includes(SECRET));
    return true;
  });
});

test('s3://: a missing bucket is ENOENT naming the endpoint', async (t) => {
  const server = await S3Server.start(['b']);
  t.after(() => server.stop());
  const ufs = openUfs('s3://no-such-bucket/x', server.options());
  t.after(() => ufs.close());
  await assert.rejects(ufs.check(), (e: unknown) => {
    assert.ok(e instanceof FsError);
    assert.equal(e.code, 'ENOENT');
    assert.match(e.message, /bucket does not exist/);
    assert.ok(e.message.includes(server.endpoint));
    return true;
  });
});

test('s3://: an unreachable endpoint is a connection error naming it, within the attempts', async (t) => {
  const port = await freePort();
  const ufs = openUfs('s3://b', {
    's3.endpoint_url': `http://127.0.0.1:${port}`,
    's3.credentials.access': 'k',
    's3.credentials.secret': SECRET,
    'ufs.max_attempts': '2',
  });
  t.after(() => ufs.close());
  const t0 = Date.now();
  await assert.rejects(ufs.check(), (e: unknown) => {
    assert.ok(e instanceof FsError);
    assert.equal(e.code, 'ECONNREFUSED');
    assert.ok(e.message.includes(`http://127.0.0.1:${port}`), e.message);
    assert.ok(!e.message.includes(SECRET));
    return true;
  });
  assert.ok(Date.now() - t0 < 10_000, 'fails fast');
});

test('s3://: a range read is one ranged GET; a cut connection mid-read is an error, not a short read', async (t) => {
  const server = await S3Server.start(['b']);
  t.after(() => server.stop());
  const raw = rawClient(server);
  t.after(() => raw.destroy());
  const data = randomBytes(32 * 1024 * 1024);
  await raw.send(new PutObjectCommand({ Bucket: 'b', Key: 'big.bin', Body: data }));
  const ufs = openUfs('s3://b', server.options());
  t.after(() => ufs.close());

  const before = server.gets('b', 'big.bin').length;
  const r = await ufs.openRead('/big.bin', { offset: 1_000_000, length: 3_000_000 });
  assert.ok((await readAll(r.body)).equals(data.subarray(1_000_000, 4_000_000)));
  const gets = server.gets('b', 'big.bin').slice(before);
  assert.equal(gets.length, 1);
  assert.equal(gets[0]?.range, 'bytes=1000000-3999999');

  const cut = await ufs.openRead('/big.bin');
  let got = 0;
  const failed = (async () => {
    for await (const c of cut.body) {
      got += (c as Buffer).length;
      if (got > 1024 * 1024) server.cutConnections();
    }
  })();
  await assert.rejects(failed, (e: unknown) => {
    assert.ok(e instanceof FsError, String(e));
    assert.equal(e.code, 'EIO');
    return true;
  });
  assert.ok(got < data.length, 'the read did not complete');
});
