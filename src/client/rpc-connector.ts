/**
 * The production connector: channels on the cluster RPC client (src/rpc).
 */
import { StrataError } from '../common/errors.js';
import type { RpcConnector } from './transport.js';

export function defaultConnector(): RpcConnector {
  return {
    connect() {
      throw new StrataError(
        'STRATA_NOT_IMPLEMENTED',
        'the cluster RPC client is not available in this build yet',
      );
    },
  };
}
