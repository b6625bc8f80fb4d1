// The s3:// engine's direct object GETs and HEADs (signed with the SDK's signer, sent without
// its middleware): against a store that checks SigV4 signatures (Strata's own S3 gateway; s3rver does
// not check them), with keys that need encoding and with ranges; and the fallback to the SDK when a
// store refuses them, which gives the direct path up only when the refusal was about the path.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { FsError } from '../../src/common/errors.js';
import { parseS3Options } from '../../src/ufs/options.js';
import { S3Ufs } from '../../src/ufs/s3/s3-ufs.js';
import { parseUfsUri } from '../../src/ufs/uri.js';
import { ACCESS_KEY, REGION, SECRET_KEY, startGateway } from '../gateway/harness.js';
import { readAll } from './conformance.js';
import { S3Server } from './s3-server.js';

function s3Ufs(uri: string, opts: Record<string, string>, log?: Logger): S3Ufs {
  return new S3Ufs(parseUfsUri(uri), parseS3Options(opts), log);
}

test('direct GETs pass a store that checks SigV4: keys that need encoding, ranges, a wrong secret', async (t) => {
  const h = await startGateway(t);
  await h.client.send(new CreateBucketCommand({ Bucket: 'direct' }));
  const keys = [
    'plain.bin',
    'dir with space/ünï çødé.bin',
    'a+b=c&d@e.bin',
    "sub/!'()*~.bin",
    'pct%20literal.bin',
    'semi;colon,comma$[x].bin',
  ];
  const data = new Map<string, Buffer>();
  for (const k of keys) {
    const body = randomBytes(3000 + k.length);
    data.set(k, body);
    await h.client.send(new PutObjectCommand({ Bucket: 'direct', Key: k, Body: body }));
  }
  const opts = {
    's3.endpoint_url': h.endpoint,
    's3.region_name': REGION,
    's3.credentials.access': ACCESS_KEY,
    's3.credentials.secret': SECRET_KEY,
  };
  const ufs = s3Ufs('s3://direct', opts);
  t.after(() => ufs.close());
  for (const k of keys) {
    const want = data.get(k)!;
    const whole = await ufs.openRead(`/${k}`);
    assert.equal(whole.objectSize, want.length, k);
    assert.ok((await readAll(whole.body)).equals(want), `${k}: whole object`);
    const part = await ufs.openRead(`/${k}`, { offset: 1000, length: 777 });
    assert.equal(part.length, 777, k);
    assert.ok((await readAll(part.body)).equals(want.subarray(1000, 1777)), `${k}: a range`);
  }
  assert.deepEqual(ufs.answered, { direct: keys.length * 2, sdk: 0 });
  assert.equal(ufs.directGetDisabled, undefined);

  // HEADs (stat) go direct too; a missing key is the HEAD's own 404, then a listing (SDK).
  const st = await ufs.stat(`/${keys[1]!}`);
  assert.equal(st.type, 'file');
  assert.equal(st.size, data.get(keys[1]!)!.length);
  assert.ok(st.etag !== undefined && st.etag.length > 0);
  assert.equal((await ufs.stat('/dir with space')).type, 'dir');
  await assert.rejects(ufs.stat('/none'), (e: unknown) => e instanceof FsError && e.code === 'ENOENT');
  assert.deepEqual(ufs.answered, { direct: keys.length * 2 + 3, sdk: 0 });
  assert.equal(ufs.directGetDisabled, undefined);

  // A missing object: the SDK's answer (ENOENT), and the direct path stays.
  await assert.rejects(
    ufs.openRead('/no-such-key'),
    (e: unknown) => e instanceof FsError && e.code === 'ENOENT',
  );
  assert.equal(ufs.directGetDisabled, undefined);

  // A wrong secret fails both ways: the SDK's error, and no blame on the direct path.
  const wrong = s3Ufs('s3://direct', { ...opts, 's3.credentials.secret': 'not-the-secret' });
  t.after(() => wrong.close());
  await assert.rejects(wrong.openRead('/plain.bin'), (e: unknown) => {
    assert.ok(e instanceof FsError, String(e));
    assert.equal(e.code, 'EACCES');
    assert.ok(!e.message.includes('not-the-secret'));
    return true;
  });
  assert.equal(wrong.directGetDisabled, undefined);
  assert.deepEqual(wrong.answered, { direct: 0, sdk: 0 });
});

/**
 * s3rver behind a relay that answers requests without the SDK's user agent (the direct GETs)
 * with `refuse` (301 PermanentRedirect, 503 SlowDown) and forwards the rest.
 */
async function refusingRelay(
  t: { after(fn: () => Promise<void> | void): void },
  target: S3Server,
): Promise<{
  endpoint: string;
  seen: { direct: number; sdk: number };
  refuse: { status: number; code: string };
}> {
  const seen = { direct: 0, sdk: 0 };
  const refuse = { status: 301, code: 'PermanentRedirect' };
  const server = createServer((req, res) => {
    const sdk = String(req.headers['user-agent'] ?? '').includes('aws-sdk-js');
    if (req.method === 'GET') seen[sdk ? 'sdk' : 'direct']++;
    if (!sdk) {
      res.writeHead(refuse.status, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${refuse.code}</Code><Message>refused</Message></Error>`,
      );
      return;
    }
    const up = httpRequest(
      { host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, refuse };
}

/** s3rver holding 70,000 random bytes at b/`key`, behind a refusing relay (301 until told otherwise). */
async function relayedObject(t: { after(fn: () => Promise<void> | void): void }, key: string) {
  const s3 = await S3Server.start(['b']);
  t.after(() => s3.stop());
  const body = randomBytes(70_000);
  const raw = s3.client();
  t.after(() => raw.destroy());
  await raw.send(new PutObjectCommand({ Bucket: 'b', Key: key, Body: body }));
  return { s3, body, relay: await refusingRelay(t, s3) };
}

test('a store that redirects direct GETs: the SDK answers, and later GETs go through the SDK only', async (t) => {
  const { s3, body, relay } = await relayedObject(t, 'x/f.bin');
  const logged: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) });
  const ufs = s3Ufs('s3://b/x', s3.options({ 's3.endpoint_url': relay.endpoint }), log);
  t.after(() => ufs.close());

  assert.ok((await readAll((await ufs.openRead('/f.bin')).body)).equals(body));
  assert.deepEqual(relay.seen, { direct: 1, sdk: 1 });
  assert.match(ufs.directGetDisabled ?? '', /HTTP 301/);
  // Said once, in the operator's log, naming the mount's storage and the status.
  assert.equal(logged.length, 1);
  const entry = JSON.parse(logged[0]!) as { msg: string; ufs: string; reason: string };
  assert.match(entry.msg, /given up/);
  assert.equal(entry.ufs, 's3://b/x');
  assert.match(entry.reason, /HTTP 301/);
  assert.ok(
    (await readAll((await ufs.openRead('/f.bin', { offset: 10, length: 5 })).body)).equals(
      body.subarray(10, 15),
    ),
  );
  assert.deepEqual(relay.seen, { direct: 1, sdk: 2 }, 'no second direct attempt');
  assert.deepEqual(ufs.answered, { direct: 0, sdk: 2 });
});

test('a store that is busy for direct GETs: the SDK answers, and the direct path stays', async (t) => {
  const { s3, body, relay } = await relayedObject(t, 'f.bin');
  relay.refuse.status = 503;
  relay.refuse.code = 'SlowDown';
  const ufs = s3Ufs('s3://b', s3.options({ 's3.endpoint_url': relay.endpoint }));
  t.after(() => ufs.close());

  for (let i = 1; i <= 2; i++) {
    assert.ok((await readAll((await ufs.openRead('/f.bin')).body)).equals(body));
    assert.deepEqual(relay.seen, { direct: i, sdk: i });
    assert.equal(ufs.directGetDisabled, undefined);
  }
  // A HEAD refused the same way: the SDK's answer.
  assert.equal((await ufs.stat('/f.bin')).size, body.length);
  assert.deepEqual(ufs.answered, { direct: 0, sdk: 3 });
  assert.equal(ufs.directGetDisabled, undefined);

  // Turned off by the mount option: never tried.
  const off = s3Ufs('s3://b', s3.options({ 's3.endpoint_url': relay.endpoint, 's3.direct.get': 'false' }));
  t.after(() => off.close());
  assert.ok((await readAll((await off.openRead('/f.bin')).body)).equals(body));
  assert.deepEqual(relay.seen, { direct: 2, sdk: 3 });
  assert.match(off.directGetDisabled ?? '', /s3\.direct\.get = false/);
});
