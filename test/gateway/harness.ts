/**
 * A MiniCluster with an S3 gateway (`strata s3`, the compiled CLI) in front of it, and clients
 * for it: an @aws-sdk/client-s3 S3Client with default checksum behaviour, and the endpoint and
 * keys for third-party tools.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { freePort } from '../helpers/ports.js';
import { startStrata } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

export const ACCESS_KEY = 'AKIASTRATATEST000001';
export const SECRET_KEY = 'strata-test-secret-key/0123456789abcdefXYZ';
export const REGION = 'us-east-1';

export interface GatewayHarness {
  cluster: MiniCluster;
  endpoint: string;
  port: number;
  webPort: number;
  confPath: string;
  proc: Proc;
  client: S3Client;
  /** A client with other options (a wrong key, virtual-hosted style…). */
  makeClient(opts?: { accessKeyId?: string; secretAccessKey?: string; forcePathStyle?: boolean }): S3Client;
  /** Restarts the gateway with the same configuration. */
  restart(): Promise<void>;
}

export interface HarnessOptions {
  /** Extra lines in [s3_gateway]. */
  gatewayToml?: string;
  /** Extra lines in the cluster's [client] (the gateway's client settings). */
  clientToml?: string;
  echo?: boolean;
}

export async function startGateway(
  t: Pick<TestContext, 'after'>,
  opts: HarnessOptions = {},
): Promise<GatewayHarness> {
  const cluster = await MiniCluster.start(t, {
    workers: 1,
    ...(opts.clientToml === undefined ? {} : { clientToml: opts.clientToml }),
  });
  const port = await freePort();
  const webPort = await freePort();
  const confPath = join(cluster.dir, 's3.toml');
  const base = readFileSync(cluster.clientConfPath, 'utf8');
  writeFileSync(
    confPath,
    `${base}\n[s3_gateway]\nlisten = "127.0.0.1:${port}"\nweb_port = ${webPort}\nregion = "${REGION}"\naccess_key = "${ACCESS_KEY}"\nsecret_key = "${SECRET_KEY}"\n${opts.gatewayToml ?? ''}\n`,
  );
  const endpoint = `http://127.0.0.1:${port}`;
  const makeClient = (
    o: { accessKeyId?: string; secretAccessKey?: string; forcePathStyle?: boolean } = {},
  ): S3Client => {
    const c = new S3Client({
      endpoint,
      region: REGION,
      forcePathStyle: o.forcePathStyle ?? true,
      credentials: {
        accessKeyId: o.accessKeyId ?? ACCESS_KEY,
        secretAccessKey: o.secretAccessKey ?? SECRET_KEY,
      },
      maxAttempts: 1,
    });
    t.after(() => c.destroy());
    return c;
  };
  const h: GatewayHarness = {
    cluster,
    endpoint,
    port,
    webPort,
    confPath,
    proc: undefined as unknown as Proc,
    client: makeClient(),
    makeClient,
    restart: async () => {
      await h.proc.stop('SIGTERM');
      h.proc = await spawnGateway(t, confPath, webPort, opts.echo === true);
    },
  };
  h.proc = await spawnGateway(t, confPath, webPort, opts.echo === true);
  return h;
}

async function spawnGateway(
  t: Pick<TestContext, 'after'>,
  confPath: string,
  webPort: number,
  echo: boolean,
): Promise<Proc> {
  const proc = startStrata(['s3', '--conf', confPath], { t, echo });
  await waitFor(
    `s3 gateway ready on :${webPort}`,
    async () => {
      if (proc.child.exitCode !== null)
        throw new Error(`strata s3 exited with ${proc.child.exitCode}\n${proc.stderr.slice(-4000)}`);
      const res = await fetch(`http://127.0.0.1:${webPort}/ready`).catch(() => undefined);
      return res?.status === 200;
    },
    20_000,
    50,
  );
  return proc;
}
