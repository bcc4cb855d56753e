// XState v5 reference oracle for fsm's differential conformance tests.
//
// Reads JSON Lines from stdin, one case per line:
//   {"id": any, "machine": {...}, "steps": [...], "maxIterations": N?, "context": {...}?}
// and writes one JSON line per case to stdout:
//   {"id": ..., "trace": [entry, ...]}          (trace[0] after start, trace[i] after steps[i-1])
//   {"id": ..., "fatal": "message"}             (the machine cannot be created, or the case is malformed)
// A case that ends in status "error" also carries "errorMessage" (XState's message, for debugging;
// it is not part of the trace).
//
// Every trace entry is {"value", "context", "actions", "emitted", "status", "output", "error"} as
// docs/conformance.md defines. The process is long-lived: it handles cases until stdin closes.
//
// Only stdout carries the protocol. Anything else that might print (console.log from a `log`
// action, XState warnings, unhandled errors) is sent to stderr.

import readline from 'node:readline';
import {
  SimulatedClock,
  and,
  assign,
  cancel,
  createActor,
  emit,
  not,
  or,
  raise,
  setup,
  stateIn
} from 'xstate';

// --- keep stdout clean --------------------------------------------------------------------------

const writeErr = (...args) => {
  process.stderr.write(
    args.map((a) => (typeof a === 'string' ? a : safeInspect(a))).join(' ') + '\n'
  );
};
function safeInspect(value) {
  try {
    if (value instanceof Error) return value.stack ?? String(value);
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
console.log = writeErr;
console.info = writeErr;
console.debug = writeErr;
console.warn = writeErr;
console.error = writeErr;

// XState reports errors nobody listens to by throwing them from a real setTimeout. Never let that
// (or anything else) kill the long-lived process.
process.on('uncaughtException', (err) => {
  writeErr('oracle: uncaught exception (ignored):', err);
});

function writeLine(obj) {
  // Writes to a pipe are synchronous on POSIX, so every line is flushed as it is written.
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// --- the test convention --------------------------------------------------------------------------

const ASSIGN_ACTIONS = {
  inc: assign(({ context }, params) => ({
    [params.key]: (context[params.key] ?? 0) + (params.by ?? 1)
  })),
  set: assign((_, params) => ({ [params.key]: params.value })),
  setFromEvent: assign(({ event }, params) => ({ [params.key]: event[params.field] ?? null }))
};

const GUARDS = {
  ctxLt: ({ context }, params) => (context[params.key] ?? 0) < params.value,
  ctxGe: ({ context }, params) => (context[params.key] ?? 0) >= params.value,
  ctxEq: ({ context }, params) => (context[params.key] ?? null) === params.value,
  eventEq: ({ event }, params) => event[params.field] === params.value,
  yes: () => true,
  no: () => false
};

// The step currently running: recording actions and emit listeners append here.
let current = { actions: [], emitted: [] };

function recorder(name) {
  return (_args, params) => {
    current.actions.push({ type: name, params: params ?? null });
  };
}

// --- translating the JSON machine --------------------------------------------------------------

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function mapValues(obj, fn) {
  const out = {};
  for (const key of Object.keys(obj)) out[key] = fn(obj[key]);
  return out;
}

class Translator {
  constructor() {
    /** Names of the custom (recording) actions referenced anywhere in the machine. */
    this.customActions = new Set();
  }

  action(a) {
    if (typeof a === 'string') {
      if (!(a in ASSIGN_ACTIONS)) this.customActions.add(a);
      return a;
    }
    if (!isObject(a)) return a;
    switch (a.type) {
      case 'raise': {
        const options = {};
        if (a.delay !== undefined) options.delay = a.delay;
        if (a.id !== undefined) options.id = a.id;
        return Object.keys(options).length ? raise(a.event, options) : raise(a.event);
      }
      case 'cancel':
        return cancel(a.id);
      case 'emit':
        return emit(a.event);
      default:
        if (typeof a.type === 'string' && !(a.type in ASSIGN_ACTIONS)) {
          this.customActions.add(a.type);
        }
        return a;
    }
  }

  actions(a) {
    return Array.isArray(a) ? a.map((x) => this.action(x)) : this.action(a);
  }

  guard(g) {
    if (!isObject(g)) return g;
    switch (g.type) {
      case 'and':
        return and((g.guards ?? []).map((x) => this.guard(x)));
      case 'or':
        return or((g.guards ?? []).map((x) => this.guard(x)));
      case 'not':
        return not(this.guard(g.guard));
      case 'stateIn':
        return stateIn(g.state);
      default:
        return g;
    }
  }

  transition(t) {
    if (!isObject(t)) return t; // a target string (or something XState will reject)
    const out = { ...t };
    if (t.actions !== undefined) out.actions = this.actions(t.actions);
    if (t.guard !== undefined) out.guard = this.guard(t.guard);
    return out;
  }

  transitions(t) {
    return Array.isArray(t) ? t.map((x) => this.transition(x)) : this.transition(t);
  }

  invoke(inv) {
    if (!isObject(inv)) return inv;
    const out = { ...inv };
    for (const key of ['onDone', 'onError', 'onSnapshot']) {
      if (inv[key] !== undefined) out[key] = this.transitions(inv[key]);
    }
    return out;
  }

  node(n) {
    if (!isObject(n)) return n;
    const out = { ...n };
    if (n.entry !== undefined) out.entry = this.actions(n.entry);
    if (n.exit !== undefined) out.exit = this.actions(n.exit);
    if (isObject(n.on)) out.on = mapValues(n.on, (t) => this.transitions(t));
    if (n.always !== undefined) out.always = this.transitions(n.always);
    if (isObject(n.after)) out.after = mapValues(n.after, (t) => this.transitions(t));
    if (n.onDone !== undefined) out.onDone = this.transitions(n.onDone);
    if (isObject(n.initial)) out.initial = this.transition(n.initial);
    if (n.invoke !== undefined) {
      out.invoke = Array.isArray(n.invoke) ? n.invoke.map((i) => this.invoke(i)) : this.invoke(n.invoke);
    }
    if (isObject(n.states)) out.states = mapValues(n.states, (s) => this.node(s));
    return out;
  }
}

function buildMachine(testCase) {
  if (!isObject(testCase.machine)) throw new Error('case.machine must be an object');
  const translator = new Translator();
  const config = translator.node(testCase.machine);
  if (testCase.context !== undefined) config.context = testCase.context;
  if (testCase.maxIterations !== undefined && testCase.maxIterations !== null) {
    // StateMachine reads `config.options.maxIterations` (default Infinity).
    config.options = { ...(isObject(config.options) ? config.options : {}), maxIterations: testCase.maxIterations };
  }
  const actions = { ...ASSIGN_ACTIONS };
  for (const name of translator.customActions) actions[name] = recorder(name);
  return setup({ actions, guards: GUARDS }).createMachine(config);
}

// --- running a case ------------------------------------------------------------------------------

const MAX_TIMERS_PER_ADVANCE = 10000;

function orNull(v) {
  return v === undefined ? null : v;
}

// JSON round trip: undefined -> null in arrays / dropped in objects, like JSON.stringify does.
function plain(v) {
  if (v === undefined) return null;
  return JSON.parse(JSON.stringify(v) ?? 'null');
}

function errorKind(snapshot) {
  if (snapshot.status !== 'error') return null;
  const message = snapshot.error instanceof Error ? snapshot.error.message : String(snapshot.error);
  return message.startsWith('Infinite loop detected') ? 'loop' : 'error';
}

function errorMessage(err) {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return '<unprintable error>';
  }
}

function entry(actor, record) {
  const snapshot = actor.getSnapshot();
  return {
    value: plain(snapshot.value),
    context: plain(snapshot.context),
    actions: plain(record.actions),
    emitted: plain(record.emitted),
    status: snapshot.status,
    output: plain(orNull(snapshot.output)),
    error: errorKind(snapshot)
  };
}

/**
 * Move simulated time forward by `ms`, deadline by deadline, so timers armed while advancing get
 * their true start time. SimulatedClock.set(t) fires every timer whose deadline is <= t (sorted by
 * deadline; the sort is stable, so ties keep Map insertion order = the order they were armed), and
 * a timer armed during that flush starts at t. So we set the clock to the earliest pending
 * deadline, let everything due at that instant fire, and repeat; finally set the clock to the end.
 */
function advance(clock, ms) {
  const target = clock.now() + ms;
  let fired = 0;
  for (;;) {
    let earliest;
    for (const timeout of clock.timeouts.values()) {
      const deadline = timeout.start + timeout.timeout;
      if (deadline <= target && (earliest === undefined || deadline < earliest)) earliest = deadline;
    }
    if (earliest === undefined) break;
    if (++fired > MAX_TIMERS_PER_ADVANCE) {
      throw new Error(`advance(${ms}) did not settle: more than ${MAX_TIMERS_PER_ADVANCE} timer deadlines`);
    }
    clock.set(Math.max(earliest, clock.now()));
  }
  if (target > clock.now()) clock.set(target);
}

function runCase(testCase) {
  const id = testCase.id ?? null;
  const steps = testCase.steps ?? [];
  if (!Array.isArray(steps)) return { id, fatal: 'case.steps must be an array' };

  let machine;
  try {
    machine = buildMachine(testCase);
  } catch (err) {
    return { id, fatal: errorMessage(err) };
  }

  const clock = new SimulatedClock();
  current = { actions: [], emitted: [] };
  let actor;
  try {
    actor = createActor(machine, { clock, logger: writeErr });
  } catch (err) {
    return { id, fatal: `createActor failed: ${errorMessage(err)}` };
  }
  // The error handler keeps XState from rethrowing errors; the snapshot carries them.
  actor.subscribe({ next: () => {}, error: () => {}, complete: () => {} });
  actor.on('*', (event) => {
    current.emitted.push(event);
  });

  const trace = [];
  try {
    actor.start();
    trace.push(entry(actor, current));
    for (const [i, step] of steps.entries()) {
      current = { actions: [], emitted: [] };
      if (actor.getSnapshot().status === 'error') {
        // The actor is stopped: nothing can happen any more.
        trace.push({ ...trace[trace.length - 1], actions: [], emitted: [] });
        continue;
      }
      if (isObject(step) && 'event' in step) {
        if (!isObject(step.event) || typeof step.event.type !== 'string') {
          return { id, fatal: `steps[${i}].event must be an object with a string type` };
        }
        actor.send(step.event);
      } else if (isObject(step) && 'advance' in step) {
        if (typeof step.advance !== 'number' || !(step.advance >= 0)) {
          return { id, fatal: `steps[${i}].advance must be a non-negative number` };
        }
        advance(clock, step.advance);
      } else {
        return { id, fatal: `steps[${i}] must be {"event": ...} or {"advance": ms}` };
      }
      trace.push(entry(actor, current));
    }
  } catch (err) {
    return { id, fatal: `oracle failure: ${errorMessage(err)}` };
  }
  const result = { id, trace };
  const last = actor.getSnapshot();
  if (last.status === 'error') result.errorMessage = errorMessage(last.error);
  return result;
}

// --- main loop -----------------------------------------------------------------------------------

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let testCase;
  try {
    testCase = JSON.parse(line);
  } catch (err) {
    writeLine({ id: null, fatal: `invalid JSON: ${errorMessage(err)}` });
    continue;
  }
  if (!isObject(testCase)) {
    writeLine({ id: null, fatal: 'a case must be a JSON object' });
    continue;
  }
  let result;
  try {
    result = runCase(testCase);
  } catch (err) {
    result = { id: testCase.id ?? null, fatal: `oracle failure: ${errorMessage(err)}` };
  }
  try {
    writeLine(result);
  } catch (err) {
    writeLine({ id: testCase.id ?? null, fatal: `cannot serialise result: ${errorMessage(err)}` });
  }
}
