/**
 * A `Map` used as a bounded least-recently-used cache: a `Map` keeps insertion order, so re-inserting a key on use
 * keeps the least recently used one first, and that one goes when the map is full.
 */

/** The value of `key`, made the most recently used; undefined when absent. */
export function lruGet<K, V>(map: Map<K, V>, key: K): V | undefined {
  const value = map.get(key);
  if (value !== undefined) {
    map.delete(key);
    map.set(key, value);
  }
  return value;
}

/** Sets `key` as the most recently used; a new key first drops the least recently used one when `map` holds `max`. */
export function lruSet<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (!map.delete(key) && map.size >= max) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}
