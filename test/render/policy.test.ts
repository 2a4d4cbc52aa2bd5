import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkDirectives, directiveOccurrences, locationDirectives, quoteNginx } from '../../src/render/nginx-directives.js';
import { imageAllowed, qualifiedImage } from '../../src/render/policy.js';
import type { Problem } from '../../src/render/problems.js';
import { renderEnvironment } from '../../src/render/render.js';
import { envSecretSource } from '../../src/render/secrets.js';
import { appYaml, memoryRevision, REPO_YAML } from '../support/repo.js';

const secrets = envSecretSource({});

function problemsOf(files: Record<string, string>, env = 'production'): Problem[] {
  const result = renderEnvironment(memoryRevision(files), env, { secrets });
  return result.ok ? [] : result.problems;
}

/** berth.yaml with a policy: top-level `top`, and production's own `production`. */
function repoWithPolicy(top: string, production = ''): string {
  return `apiVersion: berth/v1
kind: Repository
${top ? `policy: ${top}\n` : ''}environments:
  staging: { branch: staging }
  production: { branch: main${production ? `, policy: ${production}` : ''} }
`;
}

interface Case {
  name: string;
  files: Record<string, string>;
  env?: string;
  file: string;
  line: number;
  code: Problem['code'];
  message: RegExp;
}

const route = (nginx: string) => `  route: { host: web.example.test, nginx: ${nginx} }\n`;

const refused: Case[] = [
  // Item 1: directives outside the allow-list.
  { name: 'access_log writes files as root', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ access_log: /etc/cron.d/x }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /route\.nginx\.access_log: "access_log" is not an allowed per-route nginx directive; allowed: client_max_body_size, .*policy\.nginxDirectives/ },
  { name: 'include pulls host files in', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  route:\n    host: web.example.test\n    nginx:\n      include: /etc/shadow\n') }, file: 'apps/web.yaml', line: 10, code: 'nginx-directive', message: /"include" is not an allowed per-route nginx directive/ },
  { name: 'return hijacks the route', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ return: "302 https://evil.test" }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /"return" is not an allowed/ },
  { name: 'proxy_pass to another upstream', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ proxy_pass: "http://10.0.0.1" }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /"proxy_pass" is not an allowed/ },
  // Item 2: values that cannot be written safely.
  { name: 'a $variable', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ add_header: "X-Secret $http_authorization" }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /route\.nginx\.add_header: argument "\$http_authorization" contains a "\$": nginx would read it as a variable/ },
  { name: 'a newline inside a list argument', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ add_header: [X-A, "a\\nb"] }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /contains a control character/ },
  { name: 'too many arguments, with the list hint', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ add_header: "Content-Security-Policy default-src \'self\'; img-src *" }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /add_header: takes 2 to 3 arguments, got 5 .*to keep spaces inside one argument write a list/ },
  { name: 'a directive that cannot repeat, given twice', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ client_max_body_size: [[1m], [2m]] }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /"client_max_body_size" may appear once per location/ },
  { name: 'an allowed extra directive of staging is not allowed in production', files: { 'berth.yaml': repoWithPolicy('', '{ nginxDirectives: [] }').replace('staging: { branch: staging }', 'staging: { branch: staging, policy: { nginxDirectives: [sub_filter] } }'), 'apps/web.yaml': appYaml('web', route('{ sub_filter: [a, b] }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /"sub_filter" is not an allowed/ },
  // What nginx -t would refuse, refused first.
  { name: 'an empty size', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ client_max_body_size: "" }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /route\.nginx\.client_max_body_size: takes 1 argument, got 0/ },
  { name: 'an empty argument in a list', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ proxy_buffers: [8, ""] }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /proxy_buffers: argument 2 is empty/ },
  { name: 'a number nginx cannot read', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ client_max_body_size: 1e21 }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /1e\+21 is not a whole number nginx reads/ },
  { name: 'on/off given something else', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ proxy_buffering: maybe }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /proxy_buffering: "maybe" is not one of on, off/ },
  { name: 'a header name with a colon', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ add_header: ["X-A: evil", v] }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /"X-A: evil" is not an HTTP header name/ },
  { name: 'one request header set twice', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ proxy_set_header: [[Host, a.test], [host, b.test]] }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /header host is set twice/ },
  { name: 'an argument past nginx\'s token buffer', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route(`{ add_header: [X-A, ${'a'.repeat(5000)}] }`)) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /contains 5000 characters \(at most 1024\)/ },
  { name: 'a directive name inherited by every object', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', route('{ constructor: x }')) }, file: 'apps/web.yaml', line: 7, code: 'nginx-directive', message: /"constructor" is not an allowed per-route nginx directive/ },
  { name: 'a route path longer than nginx reads', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', `  route: { host: web.example.test, path: /${'a'.repeat(2000)} }\n`) }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.route\.path: must NOT have more than 1024 characters/ },
  { name: 'a host path allowing everything through ..', files: { 'berth.yaml': repoWithPolicy('{ hostPaths: ["/srv/.."] }'), 'apps/web.yaml': appYaml('web') }, file: 'berth.yaml', line: 3, code: 'schema', message: /policy\.hostPaths\[0\]: "\/srv\/\.\." is not valid/ },
  // Item 3: the repo policy.
  { name: 'a bind mount of /etc', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  volumes:\n    - { source: /etc, target: /host-etc }\n') }, file: 'apps/web.yaml', line: 8, code: 'policy', message: /volume source \/etc is a host path the environment's policy does not allow \(no host path is allowed\); use a named volume, or allow it in berth\.yaml: policy\.hostPaths/ },
  { name: 'the Docker socket', files: { 'berth.yaml': repoWithPolicy('{ hostPaths: [/srv/shared] }'), 'apps/web.yaml': appYaml('web', '  volumes:\n    - { source: /var/run/docker.sock, target: /var/run/docker.sock }\n') }, file: 'apps/web.yaml', line: 8, code: 'policy', message: /volume source \/var\/run\/docker\.sock .* \(allowed: \/srv\/shared\)/ },
  { name: 'a sibling of an allowed path', files: { 'berth.yaml': repoWithPolicy('{ hostPaths: [/srv/shared] }'), 'apps/web.yaml': appYaml('web', '  volumes:\n    - { source: /srv/shared-secrets, target: /d }\n') }, file: 'apps/web.yaml', line: 8, code: 'policy', message: /volume source \/srv\/shared-secrets is a host path/ },
  { name: 'climbing out of an allowed path', files: { 'berth.yaml': repoWithPolicy('{ hostPaths: [/srv/shared] }'), 'apps/web.yaml': appYaml('web', '  volumes:\n    - { source: /srv/shared/../../etc, target: /d }\n') }, file: 'apps/web.yaml', line: 8, code: 'policy', message: /contains "\.\."/ },
  { name: 'privileged', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  privileged: true\n') }, file: 'apps/web.yaml', line: 7, code: 'policy', message: /asks for a privileged container, which the environment's policy does not allow/ },
  { name: 'an added capability', files: { 'berth.yaml': repoWithPolicy('{ capabilities: [NET_BIND_SERVICE] }'), 'apps/web.yaml': appYaml('web', '  capAdd: [NET_BIND_SERVICE, SYS_ADMIN]\n') }, file: 'apps/web.yaml', line: 7, code: 'policy', message: /capability SYS_ADMIN is not allowed by the environment's policy \(allowed: NET_BIND_SERVICE\)/ },
  { name: 'an image from elsewhere', files: { 'berth.yaml': repoWithPolicy('{ images: [registry.example.com/] }'), 'apps/web.yaml': appYaml('web').replace('berth-demo/httpd:1.0', 'registry.example.com.evil.test/httpd:1') }, file: 'apps/web.yaml', line: 5, code: 'policy', message: /image registry\.example\.com\.evil\.test\/httpd:1 is not from an allowed source \(allowed: registry\.example\.com\/\)/ },
  { name: 'a privileged host port', files: { 'berth.yaml': REPO_YAML, 'apps/ssh.yaml': appYaml('ssh', '  strategy: { type: recreate }\n').replace('[{ containerPort: 8080 }]', '[{ containerPort: 22, hostPort: 22 }]') }, file: 'apps/ssh.yaml', line: 6, code: 'policy', message: /host port 22 is not allowed by the environment's policy \(allowed: 1024-65535\)/ },
  { name: 'a host port outside the environment\'s own list', files: { 'berth.yaml': repoWithPolicy('{ hostPorts: [8080] }', '{ hostPorts: ["9000-9100"] }'), 'apps/web.yaml': appYaml('web', '  strategy: { type: recreate }\n').replace('[{ containerPort: 8080 }]', '[{ containerPort: 8080, hostPort: 8080 }]') }, file: 'apps/web.yaml', line: 6, code: 'policy', message: /host port 8080 is not allowed .*\(allowed: 9000-9100\)/ },
  // Item 7: what validate accepts, apply must be able to do.
  { name: 'a host nginx rejects (*x)', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  route: { host: "*x" }\n') }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.route\.host: "\*x" is not valid; expected e\.g\. "web\.example\.com" or "\*\.example\.com"/ },
  { name: 'a wildcard at both ends', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  route: { host: "*.example.*" }\n') }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.route\.host: "\*\.example\.\*" is not valid/ },
  { name: 'an empty path segment (// beside /)', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  route: { host: web.example.test, path: "//" }\n') }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.route\.path: "\/\/" is not valid/ },
  { name: 'a .. path segment', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  route: { host: web.example.test, path: /a/../b }\n') }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.route\.path: "\/a\/\.\.\/b" is not valid/ },
  { name: 'a health path with a space', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  healthCheck: { http: { path: "/health check", port: 8080 } }\n') }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.healthCheck\.http\.path: "\/health check" is not valid; expected e\.g\. "\/health"/ },
  { name: 'a health path with CRLF', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  healthCheck: { http: { path: "/h\\r\\nX-Injected: 1", port: 8080 } }\n') }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.healthCheck\.http\.path: .* is not valid/ },
  { name: 'an env value with NUL', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  env: { A: "x\\0y" }\n') }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.env\.A: expected a string \(without a NUL character\)/ },
  { name: 'a volume source that is neither a name nor an absolute path', files: { 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web', '  volumes: [{ source: ../etc, target: /d }]\n') }, file: 'apps/web.yaml', line: 7, code: 'schema', message: /spec\.volumes\[0\]\.source: "\.\.\/etc" is not valid/ },
];

describe('render: route.nginx, the repo policy and what apply cannot do', () => {
  for (const c of refused) {
    it(`refuses ${c.name} at ${c.file}:${c.line}`, () => {
      const problems = problemsOf(c.files, c.env);
      const hit = problems.find((p) => p.file === c.file && p.line === c.line && p.code === c.code && c.message.test(p.message));
      assert.ok(hit, `expected ${c.code} at ${c.file}:${c.line} matching ${c.message}; got:\n${problems.map((p) => `${p.file}:${p.line} [${p.code}] ${p.message}`).join('\n')}`);
    });
  }

  it('accepts what the policy allows, per environment', () => {
    const files = {
      'berth.yaml': repoWithPolicy('{ hostPaths: [/srv/shared], capabilities: [NET_ADMIN], images: [berth-demo/], hostPorts: [80] }', '{ privileged: true, nginxDirectives: [sub_filter] }'),
      'apps/web.yaml': appYaml(
        'web',
        '  volumes: [{ source: /srv/shared/web, target: /data }, { source: cache, target: /cache }]\n  capAdd: [NET_ADMIN]\n  privileged: true\n' +
          "  route: { host: '*.example.test', path: /app/, nginx: { sub_filter: [a, b], add_header: [[X-A, \"'\"], [Content-Security-Policy, \"default-src 'self'; img-src *\"]], proxy_connect_timeout: 5s } }\n",
      ),
    };
    // production widens privileged and nginxDirectives; everything else comes from the top level.
    assert.deepEqual(problemsOf(files), []);
    const staging = problemsOf(files, 'staging').map((p) => p.message);
    assert.equal(staging.length, 2, staging.join('\n'));
    assert.ok(staging.some((m) => /privileged/.test(m)));
    assert.ok(staging.some((m) => /"sub_filter" is not an allowed/.test(m)));
  });

  it('keeps the spec hash of apps that set none of the new fields', () => {
    const result = renderEnvironment(memoryRevision({ 'berth.yaml': REPO_YAML, 'apps/web.yaml': appYaml('web') }), 'production', { secrets });
    assert.ok(result.ok);
    const spec = result.state.apps[0]!.spec;
    assert.equal('privileged' in spec, false);
    assert.equal('capAdd' in spec, false);
  });
});

describe('nginx directive values', () => {
  it('splits a string at spaces, keeps list arguments whole, repeats a list of lists', () => {
    assert.deepEqual(directiveOccurrences('8 16k'), [['8', '16k']]);
    assert.deepEqual(directiveOccurrences(10), [['10']]);
    assert.deepEqual(directiveOccurrences(['X-A', 'a b']), [['X-A', 'a b']]);
    assert.deepEqual(directiveOccurrences([['X-A', 1], ['X-B', 'b']]), [['X-A', '1'], ['X-B', 'b']]);
  });

  it('quotes as nginx parses a double-quoted token', () => {
    assert.equal(quoteNginx(`a"b\\c'; }`), `"a\\"b\\\\c'; }"`);
  });

  it("replaces berth's own line when a route sets the same directive or header", () => {
    const lines = locationDirectives({ proxy_connect_timeout: '5s', proxy_set_header: ['host', 'example.test'] });
    assert.equal(lines.filter((l) => l.startsWith('proxy_connect_timeout')).length, 1);
    assert.ok(lines.includes('proxy_connect_timeout "5s";'));
    assert.equal(lines.filter((l) => /^proxy_set_header Host /i.test(l)).length, 0);
    assert.ok(lines.includes('proxy_set_header "host" "example.test";'));
    assert.ok(lines.includes('proxy_set_header X-Real-IP $remote_addr;'), 'other berth headers stay');
  });

  it('checks every allowed directive by name and argument count, and widens by policy', () => {
    assert.deepEqual(checkDirectives({ client_max_body_size: '10m', proxy_buffers: '8 16k', add_header: [['A', 'b', 'always']] }), []);
    assert.equal(checkDirectives({ proxy_cache: 'zone' }).length, 1);
    assert.deepEqual(checkDirectives({ proxy_cache: 'zone' }, ['proxy_cache']), []);
  });
});

describe('image policy prefixes', () => {
  it('spells out Docker Hub and matches at a name boundary', () => {
    assert.equal(qualifiedImage('nginx:1'), 'docker.io/library/nginx:1');
    assert.equal(qualifiedImage('berth-demo/httpd:1.0'), 'docker.io/berth-demo/httpd:1.0');
    assert.equal(qualifiedImage('localhost:5000/x'), 'localhost:5000/x');
    assert.ok(imageAllowed('nginx:1.25', 'nginx'));
    assert.ok(imageAllowed('docker.io/library/nginx@sha256:abc', 'nginx'));
    assert.ok(!imageAllowed('nginx-evil:1', 'nginx'));
    assert.ok(imageAllowed('berth-demo/httpd:1.0', 'berth-demo/'));
    assert.ok(imageAllowed('berth-demo/httpd:1.0', 'docker.io/berth-demo/httpd'));
    assert.ok(!imageAllowed('registry.example.com.evil.test/x', 'registry.example.com'));
    assert.ok(imageAllowed('registry.example.com/team/x:1', 'registry.example.com'));
  });

  it('compares part by part: tags and digests exactly, Hub aliases alike, registry ports', () => {
    const cases: [string, string, boolean][] = [
      ['nginx:1.25', 'nginx:1.25', true],
      ['nginx:1.24', 'nginx:1.25', false],
      ['nginx@sha256:ab', 'nginx@sha256:ab', true],
      ['docker.io/nginx:1', 'nginx', true],
      ['nginx:1', 'docker.io/nginx', true],
      ['nginx:1', 'index.docker.io/library/nginx', true],
      ['nginx:1', 'docker.io', true],
      ['ghcr.io/x', 'docker.io', false],
      ['localhost:5000/x', 'localhost:5000', true],
      ['localhost:5001/x', 'localhost:5000', false],
      ['ghcr.io/acme/web:1', 'ghcr.io/acme/', true],
      ['ghcr.io/acmeevil/web:1', 'ghcr.io/acme/', false],
    ];
    for (const [image, entry, want] of cases) assert.equal(imageAllowed(image, entry), want, `${image} under ${entry}`);
  });
});

describe('names every JavaScript object inherits', () => {
  it('are not environments, overlay folders or declared secrets', () => {
    const files = {
      'berth.yaml': REPO_YAML,
      'apps/web.yaml': appYaml('web', '  env: { A: { secretRef: constructor } }\n'),
      'overlays/__proto__/web.yaml': 'apiVersion: berth/v1\nkind: Overlay\ntarget: web\nmerge: { spec: { replicas: 2 } }\n',
    };
    const rev = memoryRevision(files);
    for (const env of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const r = renderEnvironment(rev, env, { secrets });
      assert.ok(!r.ok && r.problems.some((p) => p.code === 'unknown-environment' && p.message.includes(`environment "${env}" is not defined`)), env);
    }
    const problems = problemsOf(files);
    assert.ok(problems.some((p) => p.file === 'overlays/__proto__/web.yaml' && p.code === 'overlay-unknown-environment'), problems.map((p) => p.message).join('\n'));
    assert.ok(problems.some((p) => p.code === 'secret-missing' && /secretRef "constructor" \(env A\) is not declared/.test(p.message)), problems.map((p) => p.message).join('\n'));
  });
});
