// Long copies and completes answer as S3 does: with `keepalive_after = "0s"` the 200 and the XML
// declaration go out at once and the document follows; a failure becomes an <Error> document in
// the 200 response, which the AWS SDK turns into the error (its "200 with an error" handling).
// Checked through the SDK and on the wire.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { waitFor } from '../helpers/wait.js';
import { startGateway } from './harness.js';
import { errorCode, send, sha256Hex, signHeaders } from './signing.js';

const MiB = 1024 * 1024;

test('copies and completes keep their answer alive, errors included', async (t) => {
  const gw = await startGateway(t, { gatewayToml: 'keepalive_after = "0s"' });
  const s3 = gw.client;
  await s3.send(new CreateBucketCommand({ Bucket: 'keep' }));
  const body = randomBytes(2 * MiB + 3);
  await s3.send(new PutObjectCommand({ Bucket: 'keep', Key: 'src', Body: body }));

  const copied = await s3.send(new CopyObjectCommand({ Bucket: 'keep', Key: 'dst', CopySource: 'keep/src' }));
  assert.match(copied.CopyObjectResult?.ETag ?? '', /^"[0-9a-f]{32}"$/);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'keep', Key: 'dst' }));
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));

  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'keep', Key: 'mp' }));
  const p1 = randomBytes(5 * MiB);
  const e1 = (
    await s3.send(new UploadPartCommand({ Bucket: 'keep', Key: 'mp', UploadId, PartNumber: 1, Body: p1 }))
  ).ETag!;
  const e2 = (
    await s3.send(
      new UploadPartCopyCommand({
        Bucket: 'keep',
        Key: 'mp',
        UploadId,
        PartNumber: 2,
        CopySource: 'keep/src',
        CopySourceRange: 'bytes=0-99',
      }),
    )
  ).CopyPartResult?.ETag;
  assert.ok(e2 !== undefined);

  // A failing complete: on the wire a 200 whose document is the error, and the SDK throws it.
  const wrong = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"0123456789abcdef0123456789abcdef"</ETag></Part></CompleteMultipartUpload>`;
  const r = { method: 'POST', port: gw.port, path: '/keep/mp', query: { uploadId: UploadId! } };
  const res = await send(r, await signHeaders(r, sha256Hex(wrong)), (req) => req.end(wrong));
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-length'], undefined, 'streamed: the status went out first');
  assert.match(res.body.toString(), /^<\?xml version="1.0" encoding="UTF-8"\?>\n\s*<Error>/);
  assert.equal(errorCode(res.body), 'InvalidPart');
  // The request metrics count it by the error's status, not the 200 that carried it (counted
  // when the response has closed: polled).
  await waitFor(
    'the failed complete counted with status 400',
    async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${gw.webPort}/metrics`)).text();
      return /^strata_s3_requests_total\{[^}]*op="CompleteMultipartUpload"[^}]*status="400"[^}]*\} [1-9]/m.test(
        metrics,
      );
    },
    10_000,
  );
  await assert.rejects(
    s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'keep',
        Key: 'mp',
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }] },
      }),
    ),
    (err: unknown) => (err as { name?: string }).name === 'InvalidPart',
  );

  // The right list completes, through the same path.
  const done = await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'keep',
      Key: 'mp',
      UploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: e1 },
          { PartNumber: 2, ETag: e2 },
        ],
      },
    }),
  );
  assert.match(done.ETag ?? '', /-2"$/);
  const whole = await s3.send(new GetObjectCommand({ Bucket: 'keep', Key: 'mp' }));
  assert.ok(
    Buffer.from(await whole.Body!.transformToByteArray()).equals(Buffer.concat([p1, body.subarray(0, 100)])),
  );
});
