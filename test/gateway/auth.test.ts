// Authentication and transport edge cases against a real gateway: wrong keys and signatures,
// clock skew, presigned GET/PUT (valid, expired, tampered), anonymous access, virtual-hosted
// addressing, signed aws-chunked bodies (and a tampered chunk), an upload cut off mid-body
// (no object, no leftover temp file), /metrics, and a graceful stop on SIGTERM.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { waitFor } from '../helpers/wait.js';
import { ACCESS_KEY, REGION, SECRET_KEY, startGateway } from './harness.js';
import {
  chunkedLength,
  errorCode,
  presign,
  send,
  sha256Hex,
  signHeaders,
  signedChunkedBody,
} from './signing.js';

async function s3Error(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return { name: err.name, status: err.$metadata.httpStatusCode };
    throw err;
  }
  assert.fail('expected an S3 error');
}

test('S3 gateway: authentication, presigned URLs, aws-chunked, interrupted uploads', async (t) => {
  const gw = await startGateway(t, { gatewayToml: 'domain = "s3.test"' });
  const s3 = gw.client;
  const port = gw.port;
  await s3.send(new CreateBucketCommand({ Bucket: 'auth' }));
  await s3.send(new PutObjectCommand({ Bucket: 'auth', Key: 'hello.txt', Body: 'hello world' }));

  await t.test('unknown access key, wrong secret, clock skew, missing auth', async () => {
    const unknown = gw.makeClient({ accessKeyId: 'AKIANOBODY' });
    assert.deepEqual(await s3Error(unknown.send(new ListBucketsCommand({}))), {
      name: 'InvalidAccessKeyId',
      status: 403,
    });
    const wrong = gw.makeClient({ secretAccessKey: 'not-the-secret' });
    assert.deepEqual(await s3Error(wrong.send(new GetObjectCommand({ Bucket: 'auth', Key: 'hello.txt' }))), {
      name: 'SignatureDoesNotMatch',
      status: 403,
    });
    const skewed = new S3Client({
      endpoint: gw.endpoint,
      region: REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
      maxAttempts: 1,
      systemClockOffset: -20 * 60 * 1000,
    });
    t.after(() => skewed.destroy());
    assert.deepEqual(await s3Error(skewed.send(new ListBucketsCommand({}))), {
      name: 'RequestTimeTooSkewed',
      status: 403,
    });
    const anon = await fetch(`${gw.endpoint}/auth/hello.txt`);
    assert.equal(anon.status, 403);
    const body = await anon.text();
    assert.equal(errorCode(Buffer.from(body)), 'AccessDenied');
    assert.match(body, /<RequestId>[0-9A-F]{16}<\/RequestId>/);
    assert.equal(anon.headers.get('x-amz-request-id')?.length, 16);
  });

  await t.test('a body that does not match its signed SHA-256 is refused and not stored', async () => {
    const r = { method: 'PUT', port, path: '/auth/sha.txt' };
    const headers = await signHeaders(r, sha256Hex('the signed body'));
    const res = await send(r, { ...headers, 'content-length': '15' }, (req) => req.end('another body!!!'));
    assert.equal(res.status, 400);
    assert.equal(errorCode(res.body), 'XAmzContentSHA256Mismatch');
    assert.equal(
      (await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'auth', Key: 'sha.txt' })))).status,
      404,
    );
  });

  await t.test('presigned GET and PUT; expired and tampered URLs are refused', async () => {
    const getUrl = await presign({ method: 'GET', port, path: '/auth/hello.txt' }, 300);
    const got = await fetch(getUrl);
    assert.equal(got.status, 200);
    assert.equal(await got.text(), 'hello world');
    const putUrl = await presign({ method: 'PUT', port, path: '/auth/presigned-put.bin' }, 300);
    const payload = randomBytes(100_000);
    const put = await fetch(putUrl, { method: 'PUT', body: payload });
    assert.equal(put.status, 200);
    assert.equal(put.headers.get('etag'), `"${createHash('md5').update(payload).digest('hex')}"`);
    const back = await s3.send(new GetObjectCommand({ Bucket: 'auth', Key: 'presigned-put.bin' }));
    assert.ok(Buffer.from(await back.Body!.transformToByteArray()).equals(payload));
    const expired = await presign({ method: 'GET', port, path: '/auth/hello.txt' }, 60, {
      date: new Date(Date.now() - 3600_000),
    });
    const e = await fetch(expired);
    assert.equal(e.status, 403);
    assert.match(await e.text(), /<Code>AccessDenied<\/Code><Message>Request has expired/);
    const tampered = getUrl.replace('/auth/hello.txt', '/auth/presigned-put.bin');
    const tr = await fetch(tampered);
    assert.equal(tr.status, 403);
    assert.equal(errorCode(Buffer.from(await tr.text())), 'SignatureDoesNotMatch');
  });

  await t.test('virtual-hosted-style addressing (bucket.DOMAIN)', async () => {
    const r = { method: 'GET', port, host: `auth.s3.test:${port}`, path: '/hello.txt' };
    const headers = await signHeaders(r, sha256Hex(''));
    const res = await send(r, headers, (req) => req.end());
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'hello world');
    const list = {
      method: 'GET',
      port,
      host: `auth.s3.test:${port}`,
      path: '/',
      query: { 'list-type': '2', prefix: 'hello' },
    };
    const lh = await signHeaders(list, sha256Hex(''));
    const lr = await send(list, lh, (req) => req.end());
    assert.equal(lr.status, 200);
    assert.match(lr.body.toString(), /<Key>hello.txt<\/Key>/);
  });

  await t.test(
    'signed aws-chunked upload stores only the payload; a tampered chunk stores nothing',
    async () => {
      const payload = randomBytes(200_000);
      const chunk = 64 * 1024;
      for (const tamper of [undefined, 2]) {
        const key = tamper === undefined ? 'chunked.bin' : 'chunked-bad.bin';
        const date = new Date();
        const r = {
          method: 'PUT',
          port,
          path: `/auth/${key}`,
          headers: {
            'content-encoding': 'aws-chunked',
            'x-amz-decoded-content-length': String(payload.length),
            'content-length': String(chunkedLength(payload.length, chunk)),
          },
        };
        const headers = await signHeaders(r, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', { date });
        const seed = /Signature=([0-9a-f]{64})/.exec(headers.authorization ?? '')?.[1] ?? '';
        const body = await signedChunkedBody(payload, chunk, seed, date, tamper);
        assert.equal(body.length, chunkedLength(payload.length, chunk));
        const res = await send(r, headers, (req) => req.end(body));
        if (tamper === undefined) {
          assert.equal(res.status, 200, res.body.toString());
          const got = await s3.send(new GetObjectCommand({ Bucket: 'auth', Key: key }));
          assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(payload));
        } else {
          assert.equal(res.status, 403);
          assert.equal(errorCode(res.body), 'SignatureDoesNotMatch');
          assert.equal(
            (await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'auth', Key: key })))).status,
            404,
          );
        }
      }
    },
  );

  await t.test('a trailer naming an unknown checksum algorithm is refused, nothing stored', async () => {
    const payload = Buffer.from('hello');
    const body = Buffer.from(`5\r\nhello\r\n0\r\nx-amz-checksum-xxhash64:AAAAAAAAAAA=\r\n\r\n`);
    const r = {
      method: 'PUT',
      port,
      path: '/auth/trailer.bin',
      headers: {
        'content-encoding': 'aws-chunked',
        'x-amz-trailer': 'x-amz-checksum-xxhash64',
        'x-amz-decoded-content-length': String(payload.length),
        'content-length': String(body.length),
      },
    };
    const headers = await signHeaders(r, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    const res = await send(r, headers, (req) => req.end(body));
    assert.equal(res.status, 400, res.body.toString());
    assert.equal(errorCode(res.body), 'InvalidRequest');
    assert.match(res.body.toString(), /crc64nvme/);
    assert.equal(
      (await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'auth', Key: 'trailer.bin' })))).status,
      404,
    );
  });

  await t.test('an upload cut off mid-body leaves no object and keeps the old one', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'auth', Key: 'cut.bin', Body: 'previous version' }));
    const total = 8 * 1024 * 1024;
    for (const key of ['cut.bin', 'cut-new.bin']) {
      const r = { method: 'PUT', port, path: `/auth/${key}`, headers: { 'content-length': String(total) } };
      const headers = await signHeaders(r, 'UNSIGNED-PAYLOAD');
      await send(r, headers, (req) => {
        req.write(randomBytes(1024 * 1024), () => {
          setImmediate(() => req.destroy());
        });
      }).catch(() => undefined);
    }
    const fs = await FileSystem.connect({ config: loadConfig({ path: gw.cluster.clientConfPath }).config });
    t.after(() => fs.close());
    // The gateway aborts the temp file once it sees the connection go.
    await waitFor(
      'temp uploads removed',
      async () => {
        const left: string[] = [];
        for await (const e of fs.entries('/.s3-gateway/tmp')) left.push(e.name);
        return left.length === 0;
      },
      15_000,
    );
    const old = await s3.send(new GetObjectCommand({ Bucket: 'auth', Key: 'cut.bin' }));
    assert.equal(await old.Body!.transformToString(), 'previous version');
    assert.equal(
      (await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'auth', Key: 'cut-new.bin' })))).status,
      404,
    );
  });

  await t.test('/metrics counts requests by operation and status; health endpoints answer', async () => {
    const text = await (await fetch(`http://127.0.0.1:${gw.webPort}/metrics`)).text();
    assert.match(text, /strata_s3_requests_total\{op="PutObject",status="200",role="s3"\} \d+/);
    assert.match(text, /strata_s3_requests_total\{op="ListBuckets",status="403",role="s3"\} \d+/);
    assert.match(text, /strata_s3_received_bytes_total\{op="PutObject",role="s3"\} [1-9]\d*/);
    assert.match(text, /strata_s3_request_seconds_bucket\{le="0.1",role="s3",op="GetObject"\} \d+/);
    assert.equal((await fetch(`http://127.0.0.1:${gw.webPort}/health`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${gw.webPort}/ready`)).status, 200);
  });

  await t.test('SIGTERM stops the gateway cleanly', async () => {
    const code = await gw.proc.stop('SIGTERM');
    assert.equal(code, 0, gw.proc.stderr.slice(-2000));
  });
});
