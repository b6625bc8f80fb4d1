/**
 * A TCP proxy for fault injection: forwards bytes both ways and can cut every connection on cue,
 * or cut one as soon as the server starts answering (a response lost on the way back).
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { TestContext } from 'node:test';
import type { RemoteAddress } from '../../src/rpc/index.js';

export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  /** Connections accepted so far. */
  accepted = 0;
  /** When it returns true for bytes coming back from the server, the pair is cut instead. */
  dropServerData: ((chunk: Buffer) => boolean) | undefined;
  address: RemoteAddress = { host: '127.0.0.1', port: 0 };

  private constructor(target: RemoteAddress) {
    this.#server = createServer((client) => {
      this.accepted++;
      const upstream = connect({ host: target.host, port: target.port });
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      const cut = (): void => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('data', (b: Buffer) => upstream.write(b));
      upstream.on('data', (b: Buffer) => {
        if (this.dropServerData?.(b) === true) {
          this.dropServerData = undefined;
          cut();
          return;
        }
        client.write(b);
      });
      client.on('error', cut);
      upstream.on('error', cut);
      client.on('close', cut);
      upstream.on('close', cut);
    });
  }

  static async start(t: Pick<TestContext, 'after'>, target: RemoteAddress): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    const a = proxy.#server.address();
    if (a === null || typeof a === 'string') throw new Error('proxy has no address');
    proxy.address = { host: '127.0.0.1', port: a.port };
    t.after(() => proxy.close());
    return proxy;
  }

  /** Destroys every connection going through the proxy now. */
  cutAll(): void {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    this.#pairs.clear();
  }

  close(): Promise<void> {
    this.cutAll();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
