// PUT and GET through the gateway when its client may not open block files (short_circuit off):
// bodies go to the worker over RPC and come back through the client's read-ahead window; whole
// objects and ranges across block and send-buffer edges are exact (MiniCluster, AWS SDK).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startGateway } from './harness.js';

const MiB = 1024 * 1024;

test('S3 gateway with remote blocks only: bytes in and out are exact', async (t) => {
  const gw = await startGateway(t, { clientToml: 'short_circuit = false\nblock_size = "1MB"' });
  const s3 = gw.client;
  await s3.send(new CreateBucketCommand({ Bucket: 'remote' }));
  const body = randomBytes(3 * MiB + 777);
  const put = await s3.send(
    new PutObjectCommand({ Bucket: 'remote', Key: 'obj.bin', Body: body, ContentLength: body.length }),
  );
  assert.equal(put.ETag, `"${createHash('md5').update(body).digest('hex')}"`);

  const whole = await s3.send(new GetObjectCommand({ Bucket: 'remote', Key: 'obj.bin' }));
  assert.ok(Buffer.from(await whole.Body!.transformToByteArray()).equals(body), 'whole object');
  for (const [start, end] of [
    [MiB - 5, 2 * MiB + 5],
    [1, body.length - 2],
    [3 * MiB, 3 * MiB + 776],
  ] as const) {
    const r = await s3.send(
      new GetObjectCommand({ Bucket: 'remote', Key: 'obj.bin', Range: `bytes=${start}-${end}` }),
    );
    const got = Buffer.from(await r.Body!.transformToByteArray());
    assert.ok(got.equals(body.subarray(start, end + 1)), `range ${start}-${end}`);
  }

  // The bytes really went over RPC (no short-circuit reads or writes).
  const metrics = await (await fetch(`http://127.0.0.1:${gw.webPort}/metrics`)).text();
  const value = (name: string, path: string): number =>
    Number(new RegExp(`^${name}\\{path="${path}"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? 0);
  assert.ok(value('strata_client_read_bytes_total', 'remote') >= body.length);
  assert.equal(value('strata_client_read_bytes_total', 'local'), 0);
  assert.ok(value('strata_client_write_bytes_total', 'remote') >= body.length);
});
