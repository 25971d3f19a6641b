/**
 * Kubernetes objects for the ingress-controller tests, as a cluster would hold them (namespace `shop` unless
 * given): a Service with one port `http`, an EndpointSlice with one endpoint on 127.0.0.1, an Ingress path
 * and an Ingress of class `spooky`.
 */

/** Service `name` with the one TCP port `http` (`port` → the pods' port named `http`). */
export function service(name: string, port: number, namespace = 'shop') {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name },
    spec: { ports: [{ name: 'http', port, targetPort: 'http', protocol: 'TCP' }] },
  };
}

/** EndpointSlice `name` of Service `svc`: one endpoint at 127.0.0.1:`port` (ready unless said otherwise). */
export function endpointSlice(svc: string, name: string, port: number, ready = true, namespace = 'shop') {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace, name, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready }, targetRef: { kind: 'Pod', name: `${name}-pod` } }],
    ports: [{ name: 'http', port, protocol: 'TCP' }],
  };
}

/** A `Prefix` path `p` to Service `svc` port number `port`. */
export function prefixPath(p: string, svc: string, port: number) {
  return { path: p, pathType: 'Prefix', backend: { service: { name: svc, port: { number: port } } } };
}

/** Ingress `name` of class `ingressClassName` (default `spooky`) with `rules` and other `spec` fields. */
export function ingress(
  name: string,
  rules: { host?: string; paths: ReturnType<typeof prefixPath>[] }[],
  spec: Record<string, unknown> = {},
  namespace = 'shop',
) {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { namespace, name },
    spec: {
      ingressClassName: 'spooky',
      rules: rules.map((r) => ({ ...(r.host ? { host: r.host } : {}), http: { paths: r.paths } })),
      ...spec,
    },
  };
}
