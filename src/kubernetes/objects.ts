/**
 * The parts of the Kubernetes objects the ingress controller reads, as the API server sends them (JSON field
 * names). Only what Spooky uses is declared; everything is optional where the API allows it to be missing, so
 * a half-filled object from a watch is handled, not trusted.
 */

/** Object metadata. `creationTimestamp` is a string on the wire; the client library may hand a `Date`. */
export interface ObjectMeta {
  /** Object name. */
  name?: string;
  /** Namespace (absent for cluster-scoped objects). */
  namespace?: string;
  /** When the object was created: older Ingresses win conflicts, as in ingress-nginx. */
  creationTimestamp?: string | Date;
  /** Annotations. */
  annotations?: Record<string, string>;
  /** Labels. */
  labels?: Record<string, string>;
  /** The API server's version of the object. */
  resourceVersion?: string;
}

/** A backend of an Ingress rule or its default backend. */
export interface IngressBackend {
  /** The Service and its port (by number or by name). */
  service?: { name?: string; port?: { number?: number; name?: string } };
  /** A reference to another kind of resource (not supported by Spooky: warned about and skipped). */
  resource?: unknown;
}

/** One path of an Ingress rule. */
export interface IngressPath {
  /** The path; must start with `/` (absent: `/`). */
  path?: string;
  /** `Exact`, `Prefix` or `ImplementationSpecific` (handled as `Prefix`). */
  pathType?: string;
  /** Where matching requests go. */
  backend?: IngressBackend;
}

/** `networking.k8s.io/v1` Ingress. */
export interface Ingress {
  /** Metadata. */
  metadata?: ObjectMeta;
  /** The routing rules. */
  spec?: {
    ingressClassName?: string;
    defaultBackend?: IngressBackend;
    tls?: { hosts?: string[]; secretName?: string }[];
    rules?: { host?: string; http?: { paths?: IngressPath[] } }[];
  };
  /** Where the Ingress is reachable (written by the controller). */
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

/** `networking.k8s.io/v1` IngressClass. */
export interface IngressClass {
  /** Metadata (the `ingressclass.kubernetes.io/is-default-class` annotation). */
  metadata?: ObjectMeta;
  /** The controller that implements the class. */
  spec?: { controller?: string };
}

/** One port of a Service. */
export interface ServicePort {
  /** Port name (required by the API when a Service has several ports). */
  name?: string;
  /** The Service's port number. */
  port?: number;
  /** The port on the pods (number or the name of a container port). */
  targetPort?: number | string;
  /** `TCP` (default), `UDP` or `SCTP`. */
  protocol?: string;
  /** The application protocol: `kubernetes.io/h2c` or `h2c`, `https`, `http` (default). */
  appProtocol?: string;
}

/** `v1` Service. */
export interface Service {
  /** Metadata. */
  metadata?: ObjectMeta;
  /** Type, ports and, for `ExternalName`, the DNS name. */
  spec?: { type?: string; externalName?: string; ports?: ServicePort[] };
}

/** One endpoint (a pod, usually) of an EndpointSlice. */
export interface Endpoint {
  /** Its addresses (one, in practice). */
  addresses?: string[];
  /** Readiness; `ready` absent means ready. */
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  /** The pod behind it. */
  targetRef?: { kind?: string; name?: string; namespace?: string };
}

/** `discovery.k8s.io/v1` EndpointSlice. */
export interface EndpointSlice {
  /** Metadata (the `kubernetes.io/service-name` label names its Service). */
  metadata?: ObjectMeta;
  /** `IPv4`, `IPv6` or `FQDN`. */
  addressType?: string;
  /** The endpoints. */
  endpoints?: Endpoint[];
  /** Ports, named as the Service's ports. */
  ports?: { name?: string; port?: number; protocol?: string; appProtocol?: string }[];
}

/** `v1` Secret (Spooky reads `kubernetes.io/tls` ones: `tls.crt` and `tls.key`, base64). */
export interface Secret {
  /** Metadata. */
  metadata?: ObjectMeta;
  /** The secret's type. */
  type?: string;
  /** Base64 values by key. */
  data?: Record<string, string>;
}

/** What the controller knows of the cluster: every object of the kinds it watches. */
export interface ClusterState {
  /** Ingresses (all classes; the translation picks its own). */
  ingresses: readonly Ingress[];
  /** IngressClasses. */
  ingressClasses: readonly IngressClass[];
  /** Services. */
  services: readonly Service[];
  /** EndpointSlices. */
  endpointSlices: readonly EndpointSlice[];
  /** TLS Secrets. */
  secrets: readonly Secret[];
}

/** The label of an EndpointSlice that names its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** `namespace/name` of an object (`name` alone for cluster-scoped ones). */
export function objectKey(o: { metadata?: ObjectMeta }): string {
  const m = o.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name ?? ''}` : (m.name ?? '');
}
