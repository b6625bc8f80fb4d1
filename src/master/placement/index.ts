/** Placement: the PlacementPolicy interface, its engines, and the shared placement procedure. */
export { placeReplicas, tierPreference, tierRoom } from './policy.js';
export type {
  Placement,
  PlacementCandidate,
  PlacementPolicy,
  PlacementRequest,
  TierCandidate,
} from './policy.js';
export {
  createPlacementPolicy,
  LocalPolicy,
  RobinPolicy,
  RandomPolicy,
  LoadBasedPolicy,
  WeightedPolicy,
} from './policies.js';
export type { Rng } from './policies.js';
