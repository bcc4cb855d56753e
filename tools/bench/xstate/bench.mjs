// The XState v5 side of fsm's benchmark suite (run by tools/bench/suite.py, not by hand).
//
// Reads a JSON request on stdin: { sizes, workloads, systems, definitions, cycles } where the
// definitions are the same XState JSON machines the Python side runs. Prints one JSON object:
// { versions, cells: { xstate: { W1: cell, ... }, "js-raw": { ... } } } with cells shaped like
// tools/bench/peers/timing.py's Cell (n, wall_s, cpu_s | na | error).
//
// xstate: setup({ actions, guards }).createMachine(definition), createActor(...).start(),
// actor.send({ type }), getPersistedSnapshot() / createActor(machine, { snapshot }).
// js-raw: a plain JS table loop making one call per guard/action/entry/exit (the JIT floor).
//
// Run with --expose-gc so repetitions start from a collected heap and memory can be measured.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { assign, createActor, setup } from 'xstate';

const require = createRequire(import.meta.url);
const request = JSON.parse(readFileSync(0, 'utf8'));
const { sizes, definitions, cycles } = request;
const gc = globalThis.gc ?? (() => {});

class WrongResult extends Error {}
const expect = (condition, message) => {
  if (!condition) throw new WrongResult(message);
};

// -- timing (mirrors peers/timing.py) ---------------------------------------------------------

function timed(fn) {
  gc();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  fn();
  const wall = (performance.now() - wall0) / 1e3;
  const cpu = process.cpuUsage(cpu0);
  return [wall, (cpu.user + cpu.system) / 1e6];
}

const cycleLength = (workload) => (cycles[workload] ?? ['']).length;
const roundToCycle = (workload, n) => {
  const size = cycleLength(workload);
  return Math.max(size, n - (n % size));
};

function measure(make, workload, nominal, unit = 'events/s') {
  const cell = { unit, n: 0, wall_s: [], cpu_s: [] };
  try {
    const probeN = roundToCycle(workload, Math.max(1, Math.floor(nominal / 50)));
    // Warm the JIT up: repeat the probe for sizes.warmup_s of wall time (at least twice),
    // so the timed repetitions see V8's optimised code, as a long-running server would.
    let probeWall = 0;
    const warmupEnd = performance.now() + sizes.warmup_s * 1e3;
    for (let i = 0; i < 2 || performance.now() < warmupEnd; i++) {
      const trial = make(probeN);
      probeWall = timed(trial.run)[0];
      trial.check();
    }
    const affordable = probeWall > 0 ? Math.floor((probeN / probeWall) * sizes.budget_s) : nominal;
    cell.n = roundToCycle(workload, Math.max(probeN, Math.min(nominal, affordable)));
    if (cell.n < roundToCycle(workload, nominal)) cell.note = `${cell.n} of ${nominal} per repetition (time budget)`;
    for (let i = 0; i < sizes.reps; i++) {
      const trial = make(cell.n);
      const [wall, cpu] = timed(trial.run);
      trial.check();
      cell.wall_s.push(wall);
      cell.cpu_s.push(cpu);
    }
  } catch (error) {
    return { unit, error: error instanceof WrongResult ? `wrong result: ${error.message}` : String(error) };
  }
  return cell;
}

function measureOnce(make, reps) {
  const cell = { unit: 'ms', n: 1, wall_s: [], cpu_s: [] };
  try {
    for (let i = 0; i <= reps; i++) {
      const trial = make();
      const [wall, cpu] = timed(trial.run);
      trial.check();
      if (i > 0) {  // the first one warms up
        cell.wall_s.push(wall);
        cell.cpu_s.push(cpu);
      }
    }
  } catch (error) {
    return { unit: 'ms', error: String(error) };
  }
  return cell;
}

function measureMemory(factory, count, check) {
  for (let i = 0; i < 3; i++) check(factory());
  gc();
  gc();
  const instances = new Array(count).fill(null);
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) instances[i] = factory();
  gc();
  gc();
  const perInstance = (process.memoryUsage().heapUsed - before) / count;
  check(instances[count - 1]);
  return { unit: 'bytes', n: count, wall_s: [perInstance], cpu_s: [perInstance] };
}

function eventsFor(workload, n) {
  const cycle = cycles[workload];
  const events = [];
  for (let i = 0; i < Math.floor(n / cycle.length); i++) events.push(...cycle);
  return events;
}

// -- shared expectations ----------------------------------------------------------------------

const W1_STATES = ['a', 'b', 'c'];
const W3_LEAVES = ['x', 'y', 'p', 'q', 'p'];
const W3_CYCLE_CALLS = 9;
const counts = [0, 0];
const w3Leaf = (value) => Object.values(Object.values(value)[0])[0];

function checkW3(leaf, events, counted) {
  expect(leaf === W3_LEAVES[events.length % 5], `ended in ${leaf}`);
  if (counted) {
    const calls = Math.floor(events.length / 5) * W3_CYCLE_CALLS;
    expect(counts[0] === calls && counts[1] === calls, `entry/exit calls ${counts}, expected ${calls} each`);
  }
}

// -- xstate -----------------------------------------------------------------------------------

const impl = setup({
  actions: {
    entered: () => { counts[0]++; },
    exited: () => { counts[1]++; },
    inc: assign({ n: ({ context }) => context.n + 1 }),
  },
  guards: {
    below: ({ context }) => context.n < context.limit,
    ok: () => true,
  },
});
const W1 = impl.createMachine(definitions.W1);
const W3 = impl.createMachine(definitions.W3);
const W4 = impl.createMachine(definitions.W4);
const eventObjects = {};
const asEvents = (names) => names.map((type) => (eventObjects[type] ??= { type }));

function sender(actor, events) {
  return () => {
    for (const event of events) actor.send(event);
  };
}

const xstate = {
  W1(names) {
    const actor = createActor(W1).start();
    const events = asEvents(names);
    return {
      run: sender(actor, events),
      check: () => expect(actor.getSnapshot().value === W1_STATES[events.length % 3], 'wrong final state'),
    };
  },
  W2(names) {
    const machine = impl.createMachine({ ...definitions.W2, context: { n: 0, limit: names.length } });
    const actor = createActor(machine).start();
    return {
      run: sender(actor, asEvents(names)),
      check: () => expect(actor.getSnapshot().context.n === names.length, `n = ${actor.getSnapshot().context.n}`),
    };
  },
  W3(names) {
    const actor = createActor(W3).start();
    counts[0] = counts[1] = 0;
    return { run: sender(actor, asEvents(names)), check: () => checkW3(w3Leaf(actor.getSnapshot().value), names, true) };
  },
  W4(names) {
    const actor = createActor(W4).start();
    const want = names.length % 2 ? 'on' : 'off';
    return {
      run: sender(actor, asEvents(names)),
      check: () => {
        const value = actor.getSnapshot().value;
        expect(Object.values(value).length === 3 && Object.values(value).every((v) => v === want), JSON.stringify(value));
      },
    };
  },
  W5a(count) {
    const instances = [];
    counts[0] = counts[1] = 0;
    return {
      run: () => {
        for (let i = 0; i < count; i++) instances.push(createActor(W3).start());
      },
      check: () => {
        expect(instances.length === count && w3Leaf(instances[count - 1].getSnapshot().value) === 'x', 'not in x');
        expect(counts[0] === count * 3, `${counts[0]} entry actions for ${count} instances`);
      },
    };
  },
  W5b(count) {
    const source = createActor(W3).start();
    for (const type of ['T', 'GO']) source.send({ type });
    const restored = [];
    return {
      run: () => {
        for (let i = 0; i < count; i++) {
          const data = JSON.stringify(source.getPersistedSnapshot());
          restored.push(createActor(W3, { snapshot: JSON.parse(data) }).start());
        }
      },
      check: () => {
        const last = restored[count - 1];
        expect(w3Leaf(last.getSnapshot().value) === 'p', 'restored in the wrong state');
        last.send({ type: 'T' });
        expect(w3Leaf(last.getSnapshot().value) === 'q', 'the restored instance does not run');
      },
    };
  },
  L1() {
    const built = [];
    return {
      run: () => built.push(impl.createMachine(definitions.big)),
      check: () => {
        const actor = createActor(built[0]).start();
        for (let i = 0; i < 10; i++) actor.send({ type: 'NEXT' });
        expect(JSON.stringify(actor.getSnapshot().value) === '{"g1":"s1"}', 'wrong final state');
      },
    };
  },
  M1: [() => createActor(W3).start(), (actor) => expect(w3Leaf(actor.getSnapshot().value) === 'x', 'not in x')],
};

// -- js-raw: a table loop with one call per guard/action/entry/exit ---------------------------

const entered = () => { counts[0]++; };
const exited = () => { counts[1]++; };
const W1_TABLE = { a: { EV: 'b' }, b: { EV: 'c' }, c: { EV: 'a' } };
const W4_TABLE = { off: { TOGGLE: 'on' }, on: { TOGGLE: 'off' } };
const CROSS_OUT = [exited, exited, exited];
const CROSS_IN = [entered, entered, entered];
const W3_TABLE = {
  x: { T: ['y', [exited], [entered]] },
  y: { T: ['x', [exited], [entered]], GO: ['p', CROSS_OUT, CROSS_IN] },
  p: { T: ['q', [exited], [entered]], GO: ['x', CROSS_OUT, CROSS_IN] },
  q: { T: ['p', [exited], [entered]] },
};

const jsRaw = {
  W1(events) {
    let state = 'a';
    return {
      run: () => {
        for (const event of events) state = W1_TABLE[state][event];
      },
      check: () => expect(state === W1_STATES[events.length % 3], `ended in ${state}`),
    };
  },
  W2(events) {
    const context = { n: 0, limit: events.length };
    const below = (ctx) => ctx.n < ctx.limit;
    const inc = (ctx) => { ctx.n = ctx.n + 1; };
    const table = { a: { INC: ['a', below, inc] } };
    return {
      run: () => {
        let state = 'a';
        for (const event of events) {
          const [target, guard, action] = table[state][event];
          if (guard(context, event, null)) {
            state = target;
            action(context, event, null);
          }
        }
      },
      check: () => expect(context.n === events.length, `n = ${context.n}`),
    };
  },
  W3(events) {
    let state = 'x';
    const context = {};
    counts[0] = counts[1] = 0;
    return {
      run: () => {
        for (const event of events) {
          const [target, exits, entries] = W3_TABLE[state][event];
          for (const fn of exits) fn(context, event, null);
          state = target;
          for (const fn of entries) fn(context, event, null);
        }
      },
      check: () => checkW3(state, events, true),
    };
  },
  W4(events) {
    let r1 = 'off', r2 = 'off', r3 = 'off';
    const want = events.length % 2 ? 'on' : 'off';
    return {
      run: () => {
        for (const event of events) {
          r1 = W4_TABLE[r1][event];
          r2 = W4_TABLE[r2][event];
          r3 = W4_TABLE[r3][event];
        }
      },
      check: () => expect(r1 === want && r2 === want && r3 === want, `ended in ${[r1, r2, r3]}`),
    };
  },
  W5a(count) {
    const instances = [];
    counts[0] = 0;
    return {
      run: () => {
        for (let i = 0; i < count; i++) {
          const instance = { value: 'x', context: {} };
          for (const fn of CROSS_IN) fn(instance.context, null, null);
          instances.push(instance);
        }
      },
      check: () => expect(instances.length === count && counts[0] === 3 * count, 'instances missing'),
    };
  },
  W5b(count) {
    const source = { value: 'p', context: {} };
    const restored = [];
    return {
      run: () => {
        for (let i = 0; i < count; i++) restored.push(JSON.parse(JSON.stringify(source)));
      },
      check: () => expect(restored.length === count && restored[count - 1].value === 'p', 'bad restore'),
    };
  },
  M1: [() => ({ value: 'x', context: {} }), (instance) => expect(instance.value === 'x', 'no instance')],
};

// -- run ------------------------------------------------------------------------------------

const SYSTEMS = { xstate, 'js-raw': jsRaw };
const NA = { 'js-raw': { L1: 'a hand-written table has no definition to validate or compile' } };
const NOMINAL = { W1: 'events', W2: 'events', W3: 'events', W4: 'events', W5a: 'instances', W5b: 'instances' };
const UNITS = { W5a: 'instances/s', W5b: 'restores/s' };

const cells = {};
for (const name of request.systems) {
  const system = SYSTEMS[name];
  cells[name] = {};
  for (const workload of request.workloads) {
    const bench = system[workload];
    let cell;
    if (NA[name]?.[workload]) cell = { unit: 'ms', na: NA[name][workload] };
    else if (!bench) continue;
    else if (workload === 'L1') cell = measureOnce(bench, sizes.reps);
    else if (workload === 'M1') cell = measureMemory(bench[0], sizes.memory_instances, bench[1]);
    else if (workload.startsWith('W5')) cell = measure(bench, workload, sizes[NOMINAL[workload]], UNITS[workload]);
    else cell = measure((n) => bench(eventsFor(workload, n)), workload, sizes.events);
    cells[name][workload] = cell;
  }
}

const versions = {
  xstate: require('xstate/package.json').version,
  node: process.version,
  v8: process.versions.v8,
};
process.stdout.write(JSON.stringify({ versions, cells }));
