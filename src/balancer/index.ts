/**
 * The strategy registry: every balancing algorithm by its canonical config name.
 */
import type { StrategyName } from '../config/types.ts';
import { consistentHashStrategy } from './consistent-hash.ts';
import { ipHashStrategy } from './ip-hash.ts';
import { latencyAwareStrategy } from './latency-aware.ts';
import { leastConnectionsStrategy } from './least-connections.ts';
import { randomStrategy } from './random.ts';
import { roundRobinStrategy } from './round-robin.ts';
import type { Strategy } from './types.ts';
import { weightedRoundRobinStrategy } from './weighted-round-robin.ts';

/** Every strategy, keyed by its canonical name (each strategy's `name` equals its key). */
export const STRATEGIES: Readonly<Record<StrategyName, Strategy>> = Object.freeze({
  random: randomStrategy,
  'round-robin': roundRobinStrategy,
  'weighted-round-robin': weightedRoundRobinStrategy,
  'least-connections': leastConnectionsStrategy,
  'ip-hash': ipHashStrategy,
  'consistent-hash': consistentHashStrategy,
  'latency-aware': latencyAwareStrategy,
});

/**
 * The strategy called `name`. Throws for a name that is not a {@link StrategyName} (the config loader resolves
 * aliases and rejects unknown names first, so this only guards untyped callers).
 */
export function strategyByName(name: StrategyName): Strategy {
  const s = Object.hasOwn(STRATEGIES, name) ? STRATEGIES[name] : undefined;
  if (s === undefined) throw new Error(`unknown load-balancing strategy: ${String(name)}`);
  return s;
}
