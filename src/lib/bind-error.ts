/** Plain words for a failed bind. */

/**
 * Why binding failed, in words, from the error's `code` (Bun's messages do not say): the port is in use, the
 * address is not one of this machine's, or a privileged port without the privilege.
 */
export function bindFailureReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'EADDRNOTAVAIL') return 'no network interface of this machine has that address';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)';
  if (code === 'EADDRINUSE') return 'the port is in use';
  return 'the port is in use or the address cannot be bound';
}
