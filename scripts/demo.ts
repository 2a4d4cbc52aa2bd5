// `npm run demo`: berth end to end on this machine. Finds or starts a Docker engine, builds the
// busybox demo images, starts a private nginx on 127.0.0.1, then runs the real CLI:
// validate → plan → apply → request through nginx → plan again (no changes) → clean up.
//   npm run demo            (add -- --keep to leave the apps running)
import Docker from 'dockerode';
import { main } from '../src/cli/main.js';
import { dockerOptions } from '../src/runtime/docker/driver.js';
import { ensureDemoImages } from '../test/support/docker.js';
import { get, launchNginx } from '../test/support/nginx.js';
// @ts-expect-error plain ESM helper shared with the test runner
import { ensureDocker } from './dockerd.mjs';

const keep = process.argv.includes('--keep');
const env = 'staging';
const docker = (await ensureDocker()) as { host: string; stop(): Promise<void> };
process.env.DOCKER_HOST = docker.host;
const client = new Docker(dockerOptions(docker.host));
console.log(`• Docker engine: ${docker.host}`);
await ensureDemoImages(client);
const nginx = await launchNginx();
console.log(`• private nginx on ${nginx.listen} (config in ${nginx.confDir})`);
Object.assign(process.env, {
  BERTH_REPO: 'example-repo',
  BERTH_NGINX_CONF_DIR: nginx.confDir,
  BERTH_NGINX_LISTEN: nginx.listen,
  BERTH_NGINX_TEST_CMD: nginx.testCmd.join(' '),
  BERTH_NGINX_RELOAD_CMD: nginx.reloadCmd.join(' '),
  BERTH_STATE_DIR: `${nginx.prefix}/state`,
  BERTH_SECRET_DB_PASSWORD: 'demo-password',
});

async function step(title: string, argv: string[]): Promise<number> {
  console.log(`\n$ berth ${argv.join(' ')}    # ${title}`);
  return main(['node', 'berth', ...argv]);
}

let status = 0;
try {
  if ((await step('every environment renders cleanly', ['validate'])) !== 0) throw new Error('validate failed');
  await step('what apply would do on an empty host (exit 2: changes)', ['plan', '--env', env]);
  if ((await step('health-gated apply', ['apply', '--env', env])) !== 0) throw new Error('apply failed');
  console.log('\n• requests through nginx:');
  for (const [host, p] of [['api.example.test', '/'], ['web.example.test', '/'], ['web.example.test', '/docs/']] as const) {
    const r = await get(nginx.port, host, p);
    console.log(`  GET http://${host}${p} → ${r.status} ${r.body.trim()}`);
  }
  const again = await step('applied: nothing left to do (exit 0)', ['plan', '--env', env]);
  if (again !== 0) throw new Error('plan after apply is not empty');
  console.log('\n✔ demo finished');
} catch (err) {
  console.error(`✖ ${(err as Error).message}`);
  status = 1;
} finally {
  if (!keep) {
    const rows = await client.listContainers({ all: true, filters: { label: [`berth.env=${env}`, 'berth.managed=true'] } });
    await Promise.all(rows.map((c) => client.getContainer(c.Id).remove({ force: true })));
    nginx.stop();
    await docker.stop();
    console.log(`• cleaned up ${rows.length} containers and the private nginx`);
  } else console.log(`• left running: nginx on ${nginx.listen}, containers labelled berth.env=${env}`);
}
process.exit(status);
