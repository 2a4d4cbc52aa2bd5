import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HaproxyServer } from '../../src/runtime/haproxy/config.js';
import { commandLine, parseBackends, parseServerLoad, parseServersState, parseWorkerPid, succeeded, type LiveServer, type ServerCommand } from '../../src/runtime/haproxy/runtime-api.js';
import { backendChanges, serverDifferences } from '../../src/runtime/haproxy/servers.js';

// Replies captured from HAProxy 2.6.12 (Debian 12).
const SERVERS_STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
4 be_docs 1 c2abc-12840ea2 127.0.0.1 2 0 1 1 0 1 0 2 0 0 0 0 - 39463 - 0 0 - - 0
5 be_web 1 c1abc-d17a3b61 127.0.0.1 2 8 3 3 0 1 0 2 0 0 0 0 - 32991 - 0 0 - - 0
5 be_web 2 c3abc-00000000 ::1 0 1 1 1 0 1 0 0 0 0 0 0 - 8080 - 0 0 - - 0`;
const STAT = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
be_web,c1abc-d17a3b61,0,0,3,5,,100,0,0,,0,,0,0,0,0,UP,3
be_web,c3abc-00000000,1,1,0,1,,7,0,0,,0,,0,0,0,0,MAINT,1
be_web,BACKEND,0,0,3,5,998,107,0,0,0,0,,0,0,0,0,UP,4`;

describe('HAProxy Runtime API commands', () => {
  const cases: [ServerCommand, string][] = [
    [{ kind: 'add', backend: 'be_web', server: 'c1-ab', address: '127.0.0.1:3000', weight: 1 }, 'add server be_web/c1-ab 127.0.0.1:3000 weight 1'],
    [{ kind: 'add', backend: 'be_web', server: 'c1-ab', address: '[::1]:3000', weight: 256 }, 'add server be_web/c1-ab [::1]:3000 weight 256'],
    [{ kind: 'state', backend: 'be_web', server: 'c1-ab', state: 'drain' }, 'set server be_web/c1-ab state drain'],
    [{ kind: 'state', backend: 'be_web', server: 'c1-ab', state: 'ready' }, 'set server be_web/c1-ab state ready'],
    [{ kind: 'weight', backend: 'be_web', server: 'c1-ab', weight: 7 }, 'set server be_web/c1-ab weight 7'],
    [{ kind: 'addr', backend: 'be_web', server: 'c1-ab', ip: '::1', port: 81 }, 'set server be_web/c1-ab addr ::1 port 81'],
    [{ kind: 'del', backend: 'be_web', server: 'c1-ab' }, 'del server be_web/c1-ab'],
    [{ kind: 'shutdown-sessions', backend: 'be_web', server: 'c1-ab' }, 'shutdown sessions server be_web/c1-ab'],
  ];
  for (const [cmd, line] of cases) it(`${cmd.kind}: ${line}`, () => assert.equal(commandLine(cmd), line));

  const refused: [string, ServerCommand][] = [
    ['a second command after ";"', { kind: 'del', backend: 'be_web', server: 'x;shutdown sessions server be/y' }],
    ['a space in a name', { kind: 'state', backend: 'be web', server: 'x', state: 'ready' }],
    ['a newline in a name', { kind: 'del', backend: 'be_web', server: 'x\nshow info' }],
    ['an empty name', { kind: 'del', backend: 'be_web', server: '' }],
    ['a host name for an address', { kind: 'add', backend: 'be_web', server: 'x', address: 'evil.test:80', weight: 1 }],
    ['options after the address', { kind: 'add', backend: 'be_web', server: 'x', address: '127.0.0.1:80 ssl verify none', weight: 1 }],
    ['a weight over 256', { kind: 'weight', backend: 'be_web', server: 'x', weight: 257 }],
    ['a fractional weight', { kind: 'weight', backend: 'be_web', server: 'x', weight: 1.5 }],
    ['a bad ip in addr', { kind: 'addr', backend: 'be_web', server: 'x', ip: '1.2.3.4 port 9', port: 1 }],
  ];
  for (const [what, cmd] of refused) it(`refuses ${what}`, () => assert.throws(() => commandLine(cmd)));

  it("reads HAProxy's plain-text replies: success words for add and del, silence for the rest", () => {
    const add: ServerCommand = { kind: 'add', backend: 'b', server: 's', address: '127.0.0.1:1', weight: 1 };
    assert.equal(succeeded(add, 'New server registered.'), true);
    assert.equal(succeeded(add, 'Already exists a server with the same name in backend.'), false);
    assert.equal(succeeded({ kind: 'del', backend: 'b', server: 's' }, 'Server deleted.'), true);
    assert.equal(succeeded({ kind: 'del', backend: 'b', server: 's' }, 'Only servers in maintenance mode can be deleted.'), false);
    assert.equal(succeeded({ kind: 'state', backend: 'b', server: 's', state: 'drain' }, ''), true);
    assert.equal(succeeded({ kind: 'state', backend: 'b', server: 's', state: 'drain' }, 'No such server.'), false);
  });
});

describe('HAProxy Runtime API replies', () => {
  it('show servers state: servers by backend, with address, port, admin state and weight', () => {
    const state = parseServersState(SERVERS_STATE);
    assert.deepEqual([...state.keys()], ['be_docs', 'be_web']);
    assert.deepEqual(state.get('be_web'), [
      { backend: 'be_web', name: 'c1abc-d17a3b61', ip: '127.0.0.1', port: 32991, adminState: 8, weight: 3 },
      { backend: 'be_web', name: 'c3abc-00000000', ip: '::1', port: 8080, adminState: 1, weight: 1 },
    ]);
    assert.equal(parseServersState('1\n').size, 0);
  });

  it('show stat: current sessions and queue per server, without the BACKEND row', () => {
    assert.deepEqual([...parseServerLoad(STAT)], [
      ['c1abc-d17a3b61', { sessions: 3, queued: 0 }],
      ['c3abc-00000000', { sessions: 0, queued: 1 }],
    ]);
  });

  it('show backend and show info', () => {
    assert.deepEqual([...parseBackends('# name\nbe_docs\nbe_web\n')], ['be_docs', 'be_web']);
    assert.equal(parseWorkerPid('Name: HAProxy\nVersion: 2.6.12\nNbthread: 2\nPid: 20702\nUptime: 0d'), 20702);
    assert.equal(parseWorkerPid('Unknown command.'), undefined);
  });
});

describe('HAProxy server changes (the rolling-update diff)', () => {
  const want = (name: string, port: number, weight = 1): HaproxyServer => ({ name, ip: '127.0.0.1', port, weight });
  const live = (name: string, port: number, extra: Partial<LiveServer> = {}): LiveServer => ({ backend: 'be', name, ip: '127.0.0.1', port, adminState: 0, weight: 1, ...extra });

  it('adds (then sets ready) a new server before anything leaves; a server no longer wanted leaves', () => {
    const c = backendChanges('be', [want('old-1', 1), want('new-2', 2)], [live('old-1', 1), live('old-0', 0)]);
    assert.deepEqual(c.now.map(commandLine), ['add server be/new-2 127.0.0.1:2 weight 1', 'set server be/new-2 state ready']);
    assert.deepEqual(c.leave, ['old-0']);
  });

  it('sets changed weights, puts a server in maintenance or drain back in service, moves one moved by hand', () => {
    const c = backendChanges('be', [want('a', 1, 5), want('b', 2), want('c', 3), want('d', 4)], [live('a', 1), live('b', 2, { adminState: 1 }), live('c', 3, { adminState: 8 }), live('d', 9)]);
    assert.deepEqual(c.now.map(commandLine), ['set server be/a weight 5', 'set server be/b state ready', 'set server be/c state ready', 'set server be/d addr 127.0.0.1 port 4']);
    assert.deepEqual(c.leave, []);
  });

  it('nothing to do when HAProxy runs what is wanted', () => {
    assert.deepEqual(backendChanges('be', [want('a', 1, 2)], [live('a', 1, { weight: 2 })]), { backend: 'be', now: [], leave: [] });
  });

  it('names every difference for a drift report', () => {
    assert.deepEqual(serverDifferences([want('a', 1), want('b', 2, 3), want('c', 3)], [live('b', 2, { adminState: 1 }), live('c', 4), live('z', 9)]), [
      'server a (127.0.0.1:1) missing',
      'server b has weight 1, berth wrote 3',
      'server b is in maintenance',
      'server c at 127.0.0.1:4, berth wrote 127.0.0.1:3',
      "server z (127.0.0.1:9) is not in berth's file",
    ]);
  });
});
