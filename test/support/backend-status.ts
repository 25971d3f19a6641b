/**
 * What integration tests ask about one backend: its entry in Spooky's `/status`, how many requests the test
 * backend (`backend-server.ts`) served, and making that backend answer every request with a given status.
 */
import { admin, type Backend, type SpookyProcess } from './process.ts';

/** The `/status` entry of backend `id` in `pool`, typed as the test needs it; throws when there is none. */
export async function backendStatus<T extends { id: string }>(spooky: SpookyProcess, pool: string, id: string): Promise<T> {
  const { body } = await admin(spooky, '/status');
  const pools = (body as { pools: { name: string; backends: T[] }[] }).pools;
  const b = pools.find((p) => p.name === pool)?.backends.find((x) => x.id === id);
  if (!b) throw new Error(`no backend ${pool}/${id} in /status`);
  return b;
}

/** Requests test backend `b` has served (its `/stats`). */
export async function served(b: Backend): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${b.port}/stats`);
  return ((await res.json()) as { requests: number }).requests;
}

/** Makes test backend `b` answer every request with `status` (its `POST /admin/fail`). */
export async function failWith(b: Backend, status: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${b.port}/admin/fail?status=${status}`, { method: 'POST' });
  await res.text();
}
