/**
 * GC diagnostic, loaded before any program: `bun --preload ./bench/gc-survivors.ts src/main.ts run --config F`.
 *
 * Every second (after 2.5 s) it runs a young-generation collection, counts the objects by type, runs a full
 * collection, counts again, and prints to stderr the types of which more than 50 objects survived the young
 * collection but not the full one: `GC-SURVIVORS [["Array",5168],["Object",2261],...]`. Those are garbage that
 * something old still pointed at (typically an object that was alive at an earlier collection and was written to
 * since, such as a finished request's bookkeeping), which fills the old generation and makes full collections
 * frequent. Under load, compare the counts with the requests per second to see how many requests' worth
 * survive; cut suspected links one at a time and watch the counts and `BUN_JSC_logGC=1`'s totals.
 * The forced collections cost time: never use it while measuring CPU.
 */
import { edenGC, fullGC, heapStats } from 'bun:jsc';

function counts(): Record<string, number> {
  return heapStats().objectTypeCounts as Record<string, number>;
}

function report(): void {
  edenGC();
  const afterYoung = counts();
  fullGC();
  const afterFull = counts();
  const survivors = Object.keys(afterYoung)
    .map((type): [string, number] => [type, (afterYoung[type] ?? 0) - (afterFull[type] ?? 0)])
    .filter(([, n]) => n > 50)
    .sort((a, b) => b[1] - a[1]);
  console.error('GC-SURVIVORS', JSON.stringify(survivors));
}

setTimeout(() => setInterval(report, 1000).unref(), 2500).unref();
