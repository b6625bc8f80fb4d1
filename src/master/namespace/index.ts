/** The namespace: public face for the rest of the master. */
export {
  Namespace,
  truncateBlocks,
  MAX_BLOCKS_PER_FILE,
  MIN_BLOCK_SIZE_BYTES,
  MAX_BLOCK_SIZE_BYTES,
  sameUfsVersion,
} from './namespace.js';
export type {
  NamespaceOptions,
  NamespaceDefaults,
  NamespaceEvents,
  NamespaceCounts,
  CommittedBlock,
  CompleteAsOptions,
  CreateOptions,
  SetAttrOptions,
  LocatedFileBlock,
  ImportUfsFile,
} from './namespace.js';
export { checkNamespace } from './checker.js';
export type { CheckReport } from './checker.js';
export type { FileInode, Inode, DirInode, SymlinkInode, UfsFileState } from './inode.js';
export { realBlockIds, blockCount, ROOT_ID } from './inode.js';
export { ROOT_CALLER } from './permissions.js';
