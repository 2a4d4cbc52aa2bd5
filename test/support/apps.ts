/** An app of the demo image: busybox httpd answering `body` on `/` and 200 on `/health`. */
export interface HttpdAppOptions {
  name: string;
  /** What `GET /` answers (default: the app's name). */
  body?: string;
  /** Tag of berth-demo/httpd (default 1.0). */
  version?: string;
  replicas?: number;
  /** Route host; no route without one. */
  host?: string;
  drainSeconds?: number;
  /** Health-check interval in seconds (default 0.25). */
  intervalSeconds?: number;
  /** Health-check path (default /health; a missing path makes the app fail its gate). */
  healthPath?: string;
  /** More health-check fields, e.g. `timeoutSeconds: 2, failureThreshold: 2`. */
  healthCheck?: string;
  /** Extra YAML lines under `spec:`, each indented two spaces and ending in a newline. */
  extra?: string;
}

/** The App document of one demo-image app, as tests and benchmarks write it into a config repo. */
export function httpdApp(o: HttpdAppOptions): string {
  const health = [`http: { path: ${o.healthPath ?? '/health'}, port: 8080 }`, `intervalSeconds: ${o.intervalSeconds ?? 0.25}`, ...(o.healthCheck ? [o.healthCheck] : [])].join(', ');
  const route = o.host ? `  route: { host: ${o.host}${o.drainSeconds !== undefined ? `, drainSeconds: ${o.drainSeconds}` : ''} }\n` : '';
  return `apiVersion: berth/v1
kind: App
metadata: { name: ${o.name} }
spec:
  image: berth-demo/httpd:${o.version ?? '1.0'}
  replicas: ${o.replicas ?? 1}
  command: ["/bin/sh", "-c", "echo ${o.body ?? o.name} > /www/index.html && exec httpd -f -p 8080 -h /www"]
  ports: [{ containerPort: 8080 }]
  healthCheck: { ${health} }
${route}${o.extra ?? ''}`;
}
