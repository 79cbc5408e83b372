/**
 * Writes `key` as the newest entry of `cache` (a Map iterates in insertion order) and drops the
 * oldest beyond `max`: the topic service's caches are keyed by caller-chosen path names, which must
 * not grow them without end.
 */
export function setBounded<K, V>(cache: Map<K, V>, key: K, value: V, max: number): void {
  cache.delete(key);
  cache.set(key, value);
  if (cache.size > max) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
}

/** Takes `entry` out of `cache` again once `pending` rejects, unless a newer entry replaced it: a failed lookup is not cached. */
export function forgetOnFailure<K, V>(cache: Map<K, V>, key: K, entry: V, pending: Promise<unknown>): void {
  pending.catch(() => {
    if (cache.get(key) === entry) cache.delete(key);
  });
}
