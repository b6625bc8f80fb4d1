// Third-party S3 clients from Debian against a real gateway: s3cmd (SigV4, multipart with 5 MiB
// chunks) and awscli (botocore's default checksums, multipart above 8 MiB, sync, s3api, presign).
// Bytes are compared by MD5 after round trips through each tool.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { requireTools } from '../helpers/ci.js';
import { run } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { ACCESS_KEY, REGION, SECRET_KEY, startGateway } from './harness.js';

const MiB = 1024 * 1024;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const skip = requireTools('s3cmd', 'aws');

test('S3 gateway with s3cmd and awscli', { skip }, async (t) => {
  const gw = await startGateway(t);
  const dir = tempDir(t, 'strata-s3-tools-');
  const small = randomBytes(100_000);
  const big = randomBytes(12 * MiB + 4321);
  writeFileSync(join(dir, 'small.bin'), small);
  writeFileSync(join(dir, 'big.bin'), big);

  await t.test('s3cmd: mb, put (single and multipart), ls, get, cp, del, rb', async () => {
    const cfg = join(dir, 's3cmd.cfg');
    writeFileSync(
      cfg,
      [
        '[default]',
        `access_key = ${ACCESS_KEY}`,
        `secret_key = ${SECRET_KEY}`,
        `host_base = 127.0.0.1:${gw.port}`,
        `host_bucket = 127.0.0.1:${gw.port}`,
        `bucket_location = ${REGION}`,
        'use_https = False',
        'signature_v2 = False',
        'check_ssl_certificate = False',
        'multipart_chunk_size_mb = 5',
        '',
      ].join('\n'),
    );
    const s3cmd = async (...args: string[]): Promise<string> => {
      const r = await run('s3cmd', ['-c', cfg, '--no-progress', ...args], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, `s3cmd ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    await s3cmd('mb', 's3://tools-s3cmd');
    await s3cmd('put', join(dir, 'small.bin'), 's3://tools-s3cmd/small.bin');
    await s3cmd('put', join(dir, 'big.bin'), 's3://tools-s3cmd/dir/big.bin');
    const head = await gw.client.send(new HeadObjectCommand({ Bucket: 'tools-s3cmd', Key: 'dir/big.bin' }));
    assert.match(head.ETag ?? '', /-3"$/); // 12 MiB in 5 MiB chunks: a 3-part upload
    const ls = await s3cmd('ls', 's3://tools-s3cmd/');
    assert.match(ls, /DIR\s+s3:\/\/tools-s3cmd\/dir\//);
    assert.match(ls, /100000\s+s3:\/\/tools-s3cmd\/small\.bin/);
    const lsr = await s3cmd('ls', '-r', 's3://tools-s3cmd/');
    assert.match(lsr, /s3:\/\/tools-s3cmd\/dir\/big\.bin/);
    await s3cmd('get', 's3://tools-s3cmd/dir/big.bin', join(dir, 'big.s3cmd'));
    assert.equal(md5(readFileSync(join(dir, 'big.s3cmd'))), md5(big));
    await s3cmd('cp', 's3://tools-s3cmd/small.bin', 's3://tools-s3cmd/copy/small.bin');
    await s3cmd('get', 's3://tools-s3cmd/copy/small.bin', join(dir, 'small.s3cmd'));
    assert.equal(md5(readFileSync(join(dir, 'small.s3cmd'))), md5(small));
    await s3cmd(
      'del',
      's3://tools-s3cmd/small.bin',
      's3://tools-s3cmd/copy/small.bin',
      's3://tools-s3cmd/dir/big.bin',
    );
    await s3cmd('rb', 's3://tools-s3cmd');
  });

  await t.test('awscli: s3 mb/cp/ls/sync/rm/rb, s3api, presign', async () => {
    const home = join(dir, 'aws-home');
    mkdirSync(home);
    // The gateway speaks Signature V4 only; `aws s3 presign` signs V2 unless told otherwise.
    writeFileSync(join(home, 'config'), '[default]\ns3 =\n    signature_version = s3v4\n');
    const env = {
      ...process.env,
      HOME: home,
      AWS_ACCESS_KEY_ID: ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: SECRET_KEY,
      AWS_DEFAULT_REGION: REGION,
      AWS_CONFIG_FILE: join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const aws = async (...args: string[]): Promise<string> => {
      const r = await run('aws', ['--endpoint-url', gw.endpoint, ...args], { env, timeoutMs: 60_000 });
      assert.equal(r.code, 0, `aws ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    await aws('s3', 'mb', 's3://tools-aws');
    await aws('s3', 'cp', join(dir, 'small.bin'), 's3://tools-aws/small.bin');
    await aws('s3', 'cp', join(dir, 'big.bin'), 's3://tools-aws/big/big.bin');
    const head = JSON.parse(
      await aws('s3api', 'head-object', '--bucket', 'tools-aws', '--key', 'big/big.bin'),
    ) as {
      ContentLength: number;
      ETag: string;
    };
    assert.equal(head.ContentLength, big.length);
    assert.match(head.ETag, /-2"$/); // awscli: 8 MiB parts above its 8 MiB threshold
    const got = await gw.client.send(new GetObjectCommand({ Bucket: 'tools-aws', Key: 'big/big.bin' }));
    assert.equal(md5(Buffer.from(await got.Body!.transformToByteArray())), md5(big));
    const ls = await aws('s3', 'ls', 's3://tools-aws/');
    assert.match(ls, /PRE big\//);
    assert.match(ls, /100000 small\.bin/);
    await aws('s3', 'cp', 's3://tools-aws/big/big.bin', join(dir, 'big.aws'));
    assert.equal(md5(readFileSync(join(dir, 'big.aws'))), md5(big));
    // sync up a small tree and back down
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    for (const [p, text] of [
      ['one.txt', '1'],
      ['a/two.txt', '22'],
      ['a/b/three.txt', '333'],
    ] as const) {
      writeFileSync(join(tree, p), text);
    }
    await aws('s3', 'sync', tree, 's3://tools-aws/tree');
    const listed = await gw.client.send(new ListObjectsV2Command({ Bucket: 'tools-aws', Prefix: 'tree/' }));
    assert.deepEqual(
      listed.Contents?.map((c) => c.Key),
      ['tree/a/b/three.txt', 'tree/a/two.txt', 'tree/one.txt'],
    );
    const down = join(dir, 'down');
    await aws('s3', 'sync', 's3://tools-aws/tree', down);
    assert.equal(readFileSync(join(down, 'a', 'b', 'three.txt'), 'utf8'), '333');
    const v2 = JSON.parse(
      await aws('s3api', 'list-objects-v2', '--bucket', 'tools-aws', '--delimiter', '/', '--prefix', 'tree/'),
    ) as { Contents: { Key: string }[]; CommonPrefixes: { Prefix: string }[] };
    assert.deepEqual(
      v2.Contents.map((c) => c.Key),
      ['tree/one.txt'],
    );
    assert.deepEqual(
      v2.CommonPrefixes.map((c) => c.Prefix),
      ['tree/a/'],
    );
    const url = (await aws('s3', 'presign', 's3://tools-aws/small.bin', '--expires-in', '300')).trim();
    const pres = await fetch(url);
    assert.equal(pres.status, 200);
    assert.equal(md5(Buffer.from(await pres.arrayBuffer())), md5(small));
    await aws(
      's3api',
      'copy-object',
      '--bucket',
      'tools-aws',
      '--key',
      'copied.bin',
      '--copy-source',
      'tools-aws/small.bin',
    );
    await aws('s3', 'rm', '--recursive', 's3://tools-aws/');
    await aws('s3', 'rb', 's3://tools-aws');
  });
});
