/**
 * s3rver in a process of its own for bench/ufs, so the store's work does not share an event loop
 * with the client being measured. Prints `port=<n>` on stdout once it listens; stops on SIGTERM.
 *
 *   node dist/bench/ufs/s3rver-child.js <data dir> <bucket>
 */
import { S3Server } from '../../test/ufs/s3-server.js';

const [dir, bucket] = process.argv.slice(2);
if (dir === undefined || bucket === undefined) {
  process.stderr.write('usage: s3rver-child.js <data dir> <bucket>\n');
  process.exit(2);
}
const s3 = await S3Server.start([bucket], { dir });
process.stdout.write(`port=${s3.port}\n`);
process.on('SIGTERM', () => {
  void s3.stop().finally(() => process.exit(0));
});
