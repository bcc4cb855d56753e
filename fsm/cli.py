"""The ``fsm`` command line: a thin layer over the library.

Library errors (:class:`~fsm.errors.FsmError`) become clean messages and exit codes, never
tracebacks. Exit codes: 0 success, 1 invalid input (a definition, event, snapshot or
store request fsm refuses), 2 usage errors (click's own), 3 a machine that failed while
running, 4 a replay that does not reproduce the stored snapshot.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from fsm.errors import DefinitionError, FsmError
from fsm.machine import Machine
from fsm.runtime.actor import Actor, ActorBase
from fsm.runtime.clock import VirtualClock
from fsm.semantics.snapshot import Effect, Snapshot

EXIT_INVALID = 1
EXIT_FAILED = 3
EXIT_REPLAY_MISMATCH = 4


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_INVALID) -> None:
        self.code = code
        super().__init__(message)


def _fail(message: str, code: int = EXIT_INVALID) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _guard(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn library errors into clean CLI errors (message on stderr, exit code)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except CliError as exc:
            _fail(str(exc), exc.code)
        except json.JSONDecodeError as exc:
            _fail(f"invalid JSON: {exc}")
        except FsmError as exc:
            _fail(str(exc))

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fsm", prog_name="fsm")
def main() -> None:
    """Run, check, persist and draw XState-style statecharts.

    Exit codes: 0 ok, 1 invalid input, 2 usage error, 3 the machine failed, 4 a replay
    mismatch.
    """


# -- shared helpers ----------------------------------------------------------------------


def _parse_event(text: str) -> dict[str, Any]:
    """``TYPE`` or ``TYPE:{"json": "payload"}`` or a full JSON event object."""
    text = text.strip()
    if text.startswith("{"):
        whole = json.loads(text)
        if not isinstance(whole, dict):
            raise CliError(f"not a JSON object: {text}")
        return whole
    kind, sep, payload = text.partition(":")
    event = {"type": kind}
    if sep:
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise CliError(f"the payload of {kind!r} must be a JSON object")
        event.update(data)
    return event


def _read_events(path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            yield _parse_event(line)
        except (json.JSONDecodeError, CliError) as exc:
            raise CliError(f"--events {path}:{number}: {exc}") from None


def _load_impl(module_name: str | None) -> dict[str, Any]:
    """Import a module exposing ``actions``, ``guards``, ``services``, ``delays`` dicts:
    a dotted module name (imported from the current directory first) or a ``.py`` file."""
    if not module_name:
        return {}
    if module_name.endswith(".py"):
        return _impl_dicts(_import_file(Path(module_name)))
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except (ImportError, SyntaxError) as exc:
        raise CliError(f"--impl: cannot import {module_name!r}: {exc}") from None
    finally:
        sys.path.pop(0)
    return _impl_dicts(module)


def _import_file(path: Path) -> Any:
    import importlib.util

    if not path.is_file():
        raise CliError(f"--impl: no file {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"_fsm_impl_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CliError(f"--impl: cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (ImportError, SyntaxError) as exc:
        raise CliError(f"--impl: cannot import {str(path)!r}: {exc}") from None
    return module


def _impl_dicts(module: Any) -> dict[str, Any]:
    return {k: dict(getattr(module, k, {}) or {}) for k in ("actions", "guards", "services", "delays")}


#: Why ``fsm run --store`` and ``fsm send`` refuse missing actions instead of printing them.
DURABLE_ACTIONS = (
    "the custom actions of a stored instance are durable effects, marked done once they have run,"
    " so they cannot be stood in for with no-ops"
)


def _require_implementations(machine: Machine) -> None:
    """Refuse a machine with missing implementations before anything runs or is stored,
    naming every missing name with the places that use it."""
    missing = machine.missing_implementations()
    if not missing:
        return
    lines = [f"machine {machine.id!r} references implementations that were not provided:"]
    for kind, names in missing.items():
        for name, places in names.items():
            lines.append(f"  - {kind[:-1]} {name!r} (used at {', '.join(places)})")
    if "actions" in missing:
        lines.append(DURABLE_ACTIONS)
    lines.append(
        "give them with --impl MODULE (a module name or a .py file with actions, guards, services and delays dicts)"
    )
    raise CliError("\n".join(lines))


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    if not text:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise CliError(f"{option} must be a JSON object")
    return value


def _document_kind(path: Path) -> str:
    """``machine``, ``dag`` or ``saga``: what a file holds (DAG and saga documents are
    compiled into machines)."""
    from fsm.compile import is_dag_document, is_saga_document
    from fsm.loading import read_file

    data = read_file(path)
    if is_dag_document(data):
        return "dag"
    if is_saga_document(data):
        return "saga"
    return "machine"


def _machine_of(path: Path, params: Sequence[str] = ()) -> Machine:
    """The machine a file describes: a machine definition, or a compiled DAG or saga."""
    kind = _document_kind(path)
    if kind == "dag":
        from fsm.compile.dag_runner import compile_file

        return Machine.from_dict(compile_file(path, params), source=str(path))
    if kind == "saga":
        from fsm.compile.saga import compile_saga, load_saga

        return Machine.from_dict(compile_saga(load_saga(path)), source=str(path))
    return Machine.from_file(path)


def _noop(context: Any, event: Any, params: Any) -> None:
    """Stands in for actions `fsm run` has no implementation for (they are printed)."""


def _echo_log(*args: Any) -> None:
    click.echo("     log " + " ".join(json.dumps(a, default=str) if not isinstance(a, str) else a for a in args))


class StepPrinter:
    """An inspector that prints each step as it happens (text or JSON Lines)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.step = 0
        self.label = "(start)"
        self.effects: list[Effect] = []

    def __call__(self, record: dict[str, Any]) -> None:
        kind = record["type"]
        if kind == "@fsm.event":
            event = record["event"]
            self.label = event["type"]
            if len(event) > 1:
                self.label += " " + json.dumps({k: v for k, v in event.items() if k != "type"}, default=str)
        elif kind == "@fsm.action":
            self.effects.append(record["effect"])
        elif kind == "@fsm.snapshot":
            self.show(record["snapshot"])
        elif kind == "@fsm.error":
            click.echo(f"     failed: {record['error']}", err=True)

    def show(self, snapshot: Snapshot) -> None:
        effects = [e for e in self.effects if e.type not in ("xstate.schedule", "xstate.cancel")]
        self.effects = []
        if self.as_json:
            record: dict[str, Any] = {
                "step": self.step,
                "event": self.label,
                "value": snapshot.value,
                "context": snapshot.context,
                "status": snapshot.status,
                "actions": [e.to_dict() for e in effects],
            }
            if snapshot.output is not None:
                record["output"] = snapshot.output
            click.echo(json.dumps(record, default=str))
        else:
            names = [
                e.type if e.params in (None, {}) else f"{e.type} {json.dumps(e.params, default=str)}" for e in effects
            ]
            line = f"{self.step:>3}  {self.label:<24} -> {json.dumps(snapshot.value)}"
            if names:
                line += f"   [{', '.join(names)}]"
            click.echo(line)
            if snapshot.context:
                click.echo(f"     context {json.dumps(snapshot.context, default=str)}")
        self.step += 1


def _summary(actor: ActorBase, as_json: bool) -> None:
    final = actor.snapshot
    if final.status == "error":
        raise CliError(f"the machine failed: {final.error}", EXIT_FAILED)
    if not as_json:
        text = f"final: {json.dumps(final.value)} ({final.status})"
        if final.output is not None:
            text += f" output {json.dumps(final.output, default=str)}"
        click.echo(text)


def _send_all(actor: ActorBase, events: Sequence[dict[str, Any]], send: Callable[[dict[str, Any]], None]) -> None:
    for event in events:
        if actor.snapshot.status != "active":
            click.echo(f"     the machine is {actor.snapshot.status}; remaining events not sent", err=True)
            return
        send(event)


# -- validate / schema ---------------------------------------------------------------------


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.option(
    "--strict",
    is_flag=True,
    help="Also report likely mistakes: unreachable states, dead ends, unhandled events, shadowed transitions.",
)
def validate(files: Sequence[Path], as_json: bool, strict: bool) -> None:
    """Check machine definitions; report every problem with its JSON path.

    Exit code 1 if any file has a problem (with --strict, also any warning).
    """
    bad = 0
    for path in files:
        try:
            machine = _machine_of(path)
        except DefinitionError as exc:
            bad += 1
            if as_json:
                problems = [{"path": p.path, "message": p.message} for p in exc.problems]
                click.echo(json.dumps({"file": str(path), "valid": False, "problems": problems}))
            else:
                click.echo(f"{path}: {len(exc.problems)} problem(s)")
                for p in exc.problems:
                    click.echo(f"  {p.path or '<root>'}: {p.message}")
            continue
        warnings: list[Any] = []
        if strict:
            from fsm.testing.analysis import analyze, findings_to_json, format_findings

            warnings = analyze(machine)
            if warnings:
                bad += 1
        if as_json:
            report: dict[str, Any] = {"file": str(path), "valid": True, "states": len(machine.model.nodes)}
            if strict:
                report["warnings"] = findings_to_json(warnings)
            click.echo(json.dumps(report))
        elif warnings:
            click.echo(format_findings(warnings, str(path)))
        else:
            click.echo(f"{path}: ok ({len(machine.model.nodes)} states)")
    if bad:
        sys.exit(EXIT_INVALID)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the machine format (for editors and other tools)."""
    from fsm.schema import load_schema

    click.echo(json.dumps(load_schema(), indent=2))


# -- compile -----------------------------------------------------------------------------


@main.command("compile")
@click.argument("kind", type=click.Choice(["dag", "saga"]))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (else stdout).")
@click.option("--params", "params", multiple=True, help="A DAG parameter, name=value (JSON values parsed). Repeatable.")
@_guard
def compile_command(kind: str, file: Path, output: Path | None, params: Sequence[str]) -> None:
    """Compile a DAG or a saga into an ordinary machine definition (JSON)."""
    if kind == "dag":
        from fsm.compile.dag_runner import compile_file

        definition = compile_file(file, params)
    else:
        from fsm.compile.saga import compile_saga, load_saga

        if params:
            raise CliError("--params is for DAGs")
        definition = compile_saga(load_saga(file))
    text = json.dumps(definition, indent=2)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")


# -- paths -------------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--events", "events_file", type=click.Path(dir_okay=False, path_type=Path), help="JSON: event samples by type."
)
@click.option("--context", "context_json", help="Initial context as JSON.")
@click.option("--impl", "impl_module", help="A Python module with actions/guards/services/delays dicts.")
@click.option("--timers", is_flag=True, help="Also let time pass (fire `after` timers) as steps.")
@click.option("--no-invocations", is_flag=True, help="Do not complete invoked services as steps.")
@click.option("--simple", is_flag=True, help="All simple paths instead of the shortest path to each state.")
@click.option("--key", type=click.Choice(["value", "value+context"]), default="value", show_default=True)
@click.option("--to", "target", help="Only paths to this state (a value like 'a.b').")
@click.option("--max-depth", type=int, default=None)
@click.option("--max-states", type=int, default=None, help="Bound on explored snapshots (paths with --simple).")
@click.option("--json", "as_json", is_flag=True)
@_guard
def paths(
    file: Path,
    events_file: Path | None,
    context_json: str | None,
    impl_module: str | None,
    timers: bool,
    no_invocations: bool,
    simple: bool,
    key: str,
    target: str | None,
    max_depth: int | None,
    max_states: int | None,
    as_json: bool,
) -> None:
    """Event sequences reaching every reachable state (like @xstate/graph), guards
    evaluated against context."""
    from fsm.testing import paths as paths_mod

    machine = Machine.from_file(file).provide(**_load_impl(impl_module))
    missing = machine.missing_implementations().get("actions", {})
    machine = machine.provide(actions=dict.fromkeys(missing, _noop))
    options: dict[str, Any] = {
        "events": json.loads(events_file.read_text(encoding="utf-8")) if events_file else None,
        "context": _json_object(context_json, "--context"),
        "timers": timers,
        "invocations": not no_invocations,
        "key": key,
        "to": target,
    }
    if max_depth is not None:
        options["max_depth"] = max_depth
    if simple:
        if max_states is not None:
            options["max_paths"] = max_states
        found = paths_mod.simple_paths(machine, **options)
        if as_json:
            click.echo(json.dumps(paths_mod.paths_to_json(found), default=str))
        else:
            click.echo(paths_mod.format_paths(found))
        return
    if max_states is not None:
        options["max_states"] = max_states
    result = paths_mod.explore(machine, **options)
    if as_json:
        click.echo(json.dumps(paths_mod.paths_to_json(result.paths), default=str))
    else:
        click.echo(paths_mod.format_exploration(result))


# -- diagram -----------------------------------------------------------------------------

FORMATS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".mmd": "mermaid", ".mermaid": "mermaid"}


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (else stdout).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dot", "svg", "png", "mermaid"]),
    help="Output format (default: from the -o extension, else dot).",
)
@click.option("--rankdir", type=click.Choice(["LR", "TB"]), default="LR", show_default=True)
@click.option("--labels", type=click.Choice(["full", "events", "none"]), default="full", show_default=True)
@click.option("--no-actions", is_flag=True, help="Do not list entry/exit actions inside states.")
@click.option("--descriptions", is_flag=True, help="Show state descriptions.")
@click.option("--tags", is_flag=True, help="Show state tags.")
@_guard
def diagram(
    file: Path,
    output: Path | None,
    fmt: str | None,
    rankdir: str,
    labels: str,
    no_actions: bool,
    descriptions: bool,
    tags: bool,
) -> None:
    """Draw a machine: Graphviz DOT, SVG or PNG (needs the `dot` binary), or Mermaid."""
    from fsm import export
    from fsm.export.diagram import DiagramOptions

    fmt = fmt or (FORMATS.get(output.suffix.lower()) if output else None) or "dot"
    if fmt == "png" and output is None:
        raise CliError("PNG is binary: give -o FILE.png")
    options = DiagramOptions(
        rankdir=rankdir,  # type: ignore[arg-type]
        labels=labels,  # type: ignore[arg-type]
        actions=not no_actions,
        descriptions=descriptions,
        tags=tags,
    )
    machine = _machine_of(file)
    if fmt == "png":
        assert output is not None
        output.write_bytes(export.to_png(machine, options=options))
        return
    render = {"dot": export.to_dot, "svg": export.to_svg, "mermaid": export.to_mermaid}[fmt]
    text = render(machine, options=options)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        output.write_text(text, encoding="utf-8")


# -- run ---------------------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-e", "--event", "event_texts", multiple=True, help='An event: TYPE or TYPE:{"k": 1}. Repeatable.')
@click.option(
    "--events", "events_file", type=click.Path(dir_okay=False, path_type=Path), help="A JSON Lines file of events."
)
@click.option("--context", "context_json", help="Initial context as JSON (merged over the definition's).")
@click.option("--impl", "impl_module", help="A Python module with actions/guards/services/delays dicts.")
@click.option("--advance", "advance_ms", type=float, default=0.0, help="After the events, advance virtual time by MS.")
@click.option("--store", "store_url", help="Persist the run: sqlite:///path.db or postgresql://...")
@click.option("--id", "instance_id", help="Instance id in the store (default: a new one; an existing id is resumed).")
@click.option("--params", "params", multiple=True, help="DAG parameter name=value (JSON values parsed). Repeatable.")
@click.option("--rerun", is_flag=True, help="DAG: re-run what did not succeed in the stored run --id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per step.")
@_guard
def run(
    file: Path,
    event_texts: Sequence[str],
    events_file: Path | None,
    context_json: str | None,
    impl_module: str | None,
    advance_ms: float,
    store_url: str | None,
    instance_id: str | None,
    params: Sequence[str],
    rerun: bool,
    as_json: bool,
) -> None:
    """Run a machine (or a DAG or saga file), printing every step as it happens.

    Without --store, actions without an implementation are printed instead of executed,
    so any machine can be explored without writing Python; guards, delays and services
    must be provided (with --impl) because they decide where the machine goes. With
    --store the instance is durable: every step is journaled (`fsm instances history`
    shows it) and every action is a durable effect, so all implementations are required.
    A DAG runs its tasks concurrently with a live progress view (--params, --rerun).
    """
    kind = _document_kind(file)
    if kind == "dag":
        from fsm.compile.dag_runner import run_file

        result = run_file(
            file, params, impl_module=impl_module, store_url=store_url, run_id=instance_id, rerun=rerun, progress=True
        )
        click.echo(json.dumps({"run": result.run_id, "status": result.status, "states": result.states}))
        if result.status != "succeeded":
            raise CliError(
                f"the DAG run ended {result.status}" + (f": {result.error}" if result.error else ""), EXIT_FAILED
            )
        return
    if params or rerun:
        raise CliError("--params and --rerun are for DAG files")
    machine = _machine_of(file).provide(**_load_impl(impl_module))
    if kind == "saga" and context_json is None:
        from fsm.compile.saga import saga_context

        context_json = json.dumps(saga_context(instance_id or uuid.uuid4().hex))
    if not store_url:
        # Exploring: an action with no implementation is printed instead of run. A stored
        # run refuses instead (below), since its actions are durable effects.
        missing_actions = machine.missing_implementations().get("actions", {})
        machine = machine.provide(actions=dict.fromkeys(missing_actions, _noop))
    _require_implementations(machine)
    context = _json_object(context_json, "--context")
    events = [_parse_event(t) for t in event_texts]
    if events_file:
        events.extend(_read_events(events_file))
    printer = StepPrinter(as_json)
    # Virtual time (so --advance is instant), starting now on the wall clock when the run
    # is stored: persisted due times must mean the same to the workers that fire them.
    clock = VirtualClock(start=time.time() * 1000 if store_url else 0.0)
    options: dict[str, Any] = {"clock": clock, "inspect": printer, "executor": "inline", "logger": _echo_log}
    if store_url:
        from fsm.store import open_store

        store = open_store(store_url)
        instance_id = instance_id or f"{machine.id}-{uuid.uuid4().hex[:8]}"
        if store.exists(instance_id):
            actor: ActorBase = machine.resume(store, instance_id, **options)
        else:
            actor = machine.start(context, store=store, instance_id=instance_id, **options)
        if not as_json:
            click.echo(f"     instance {instance_id} in {store_url}")
    else:
        actor = Actor(machine, context=context, **options).start()
    _send_all(actor, events, lambda ev: actor.send(ev))  # type: ignore[attr-defined]
    if advance_ms:
        clock.advance(advance_ms)
    _summary(actor, as_json)


# -- persisted instances -------------------------------------------------------------------


def _store_machine(store: Any, instance_id: str | None, machine_file: Path | None, impl_module: str | None) -> Machine:
    """The machine for an instance: from --machine, else the definition the store kept."""
    impl = _load_impl(impl_module)
    if machine_file is not None:
        return Machine.from_file(machine_file).provide(**impl)
    if instance_id is None:
        raise CliError("give --machine FILE")
    stored = store.load(instance_id)
    definition = store.machine_definition(stored.machine_id, stored.machine_version)
    if definition is None:
        raise CliError(f"the store has no definition for {stored.machine_id}@{stored.machine_version}; give --machine")
    return Machine.from_dict(definition, source=f"{store.url} ({stored.machine_id}@{stored.machine_version})").provide(
        **impl
    )


store_option = click.option("--store", "store_url", required=True, help="sqlite:///path.db or postgresql://...")
machine_option = click.option(
    "--machine", "machine_file", type=click.Path(dir_okay=False, path_type=Path), help="The machine definition file."
)
impl_option = click.option("--impl", "impl_module", help="A Python module with actions/guards/services/delays dicts.")


@main.command()
@store_option
@click.argument("instance_id")
@click.argument("event_type")
@click.argument("payload", required=False)
@click.option("--event-id", help="Apply at most once: a repeated id is ignored.")
@machine_option
@impl_option
@click.option("--json", "as_json", is_flag=True, help="One JSON line per step.")
@_guard
def send(
    store_url: str,
    instance_id: str,
    event_type: str,
    payload: str | None,
    event_id: str | None,
    machine_file: Path | None,
    impl_module: str | None,
    as_json: bool,
) -> None:
    """Deliver an event to a persisted instance (from any process)."""
    from fsm.store import open_store

    store = open_store(store_url)
    machine = _store_machine(store, instance_id, machine_file, impl_module)
    _require_implementations(machine)
    event = {"type": event_type, **(_json_object(payload, "PAYLOAD") or {})}
    printer = StepPrinter(as_json)
    # Timers that came due while no process held the instance fire first, in order, as
    # a worker would fire them; then the event.
    clock = VirtualClock(start=time.time() * 1000)
    actor = machine.resume(store, instance_id, clock=clock, inspect=printer, logger=_echo_log, executor="inline")
    clock.advance(0)
    actor.send(event, event_id=event_id)
    actor.stop()
    _summary(actor, as_json)


@main.command()
@store_option
@click.option(
    "--machine",
    "machine_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Machine definitions this worker serves (default: the definitions kept in the store).",
)
@impl_option
@click.option("--once", is_flag=True, help="One pass over due timers, then exit.")
@click.option("--poll", type=float, default=1.0, help="Seconds between passes when idle.")
@click.option("--lease", "lease_ms", type=float, default=60_000, help="Lease on a claimed instance, ms.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per instance handled (or failed).")
@_guard
def worker(
    store_url: str,
    machine_files: Sequence[Path],
    impl_module: str | None,
    once: bool,
    poll: float,
    lease_ms: float,
    as_json: bool,
) -> None:
    """Fire due timers of persisted instances, and finish effects left pending (run
    several for throughput)."""
    from fsm.runtime.worker import Worker
    from fsm.store import open_store

    store = open_store(store_url)
    impl = _load_impl(impl_module)
    machines = {m.id: m for m in (Machine.from_file(f).provide(**impl) for f in machine_files)}

    def lookup(machine_id: str, version: str) -> Machine | None:
        if machine_id in machines:
            return machines[machine_id]
        definition = store.machine_definition(machine_id, version)
        return None if definition is None else Machine.from_dict(definition).provide(**impl)

    def report(instance_id: str, snapshot: Snapshot) -> None:
        if as_json:
            click.echo(json.dumps({"instance": instance_id, "value": snapshot.value, "status": snapshot.status}))
        else:
            click.echo(f"{instance_id}: {json.dumps(snapshot.value)} ({snapshot.status})")

    def report_error(instance_id: str, error: BaseException) -> None:
        # The text form goes to stderr through the worker's log; JSON gets its own line.
        click.echo(json.dumps({"instance": instance_id, "error": str(error)}))

    runner = Worker(
        store,
        lookup,
        lease_ms=lease_ms,
        executor="inline",
        on_instance=report,
        on_error=report_error if as_json else None,
    )
    if once:
        runner.run_once()
        return
    click.echo(f"worker {runner.owner} on {store_url}; Ctrl-C to stop", err=True)
    try:
        runner.run(poll=poll)
    except KeyboardInterrupt:
        runner.stop()


@main.group()
def instances() -> None:
    """List and inspect persisted instances."""


@instances.command("list")
@store_option
@click.option("--status", help="Only instances with this status (active, done, error, stopped).")
@click.option("--machine", "machine_id", help="Only instances of this machine id.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_guard
def instances_list(store_url: str, status: str | None, machine_id: str | None, limit: int, as_json: bool) -> None:
    """Instances, newest first."""
    from fsm.store import open_store

    rows = open_store(store_url).instances(status=status, machine=machine_id, limit=limit)
    if as_json:
        for r in rows:
            click.echo(
                json.dumps(
                    {
                        "id": r.id,
                        "machine": r.machine_id,
                        "status": r.status,
                        "value": r.snapshot.get("value"),
                        "version": r.version,
                    }
                )
            )
        return
    if not rows:
        click.echo("no instances")
        return
    width = max(len(r.id) for r in rows)
    click.echo(f"{'ID':<{width}}  {'MACHINE':<16} {'STATUS':<8} {'STEPS':>5}  STATE")
    for r in rows:
        click.echo(
            f"{r.id:<{width}}  {r.machine_id:<16} {r.status:<8} {r.version:>5}  {json.dumps(r.snapshot.get('value'))}"
        )


@instances.command("show")
@store_option
@click.argument("instance_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (the whole stored snapshot).")
@_guard
def instances_show(store_url: str, instance_id: str, as_json: bool) -> None:
    """One instance: its state, context, timers, running services and pending effects."""
    from fsm.store import open_store

    store = open_store(store_url)
    stored = store.load(instance_id)
    pending = store.pending_effects(instance_id)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": stored.id,
                    "machine": stored.machine_id,
                    "machine_version": stored.machine_version,
                    "version": stored.version,
                    "status": stored.status,
                    "created_at": stored.created_at,
                    "updated_at": stored.updated_at,
                    "snapshot": stored.snapshot,
                    "pending_effects": [
                        {"key": i.key, "type": i.effect.get("type"), "attempts": i.attempts, "last_error": i.last_error}
                        for i in pending
                    ],
                }
            )
        )
        return
    snapshot = stored.snapshot
    rows: list[tuple[str, str]] = [
        ("instance", stored.id),
        ("machine", f"{stored.machine_id} (version {stored.machine_version})"),
        ("status", stored.status),
        ("steps", str(stored.version)),
        ("state", json.dumps(snapshot.get("value"))),
        ("context", json.dumps(snapshot.get("context"), default=str)),
    ]
    if snapshot.get("output") is not None:
        rows.append(("output", json.dumps(snapshot["output"], default=str)))
    if snapshot.get("error") is not None:
        rows.append(("error", json.dumps(snapshot["error"], default=str)))
    for timer in sorted(snapshot.get("timers") or (), key=lambda t: t["due"]):
        rows.append(("timer", f"{timer['id']} due {_when(timer['due'] / 1000.0)}"))
    for child_id, info in sorted((snapshot.get("children") or {}).items()):
        rows.append(("service", f"{child_id} ({info.get('src')})"))
    for item in pending:
        failed = f", last error: {item.last_error}" if item.last_error else ""
        rows.append(("effect", f"{item.key} {item.effect.get('type')} pending ({item.attempts} attempts{failed})"))
    rows += [("created", _when(stored.created_at)), ("updated", _when(stored.updated_at))]
    for label, text in rows:
        click.echo(f"{label:<9} {text}")


def _when(seconds: float) -> str:
    """A wall-clock time (epoch seconds) as UTC ISO 8601, to the millisecond."""
    from datetime import datetime, timezone

    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@instances.command("history")
@store_option
@click.argument("instance_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per journal record.")
@_guard
def instances_history(store_url: str, instance_id: str, as_json: bool) -> None:
    """The journal of one instance: every step, in order."""
    from fsm.store import open_store

    for record in open_store(store_url).history(instance_id):
        if as_json:
            click.echo(json.dumps(record.to_dict()))
            continue
        actions = [e["type"] for e in record.effects if not e["type"].startswith("xstate.")]
        line = f"{record.seq:>4}  {record.event['type']:<28} -> {json.dumps(record.value)} ({record.status})"
        if actions:
            line += f"   [{', '.join(actions)}]"
        click.echo(line)


@main.command()
@store_option
@click.argument("instance_id")
@machine_option
@impl_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the replay report.")
@_guard
def replay(store_url: str, instance_id: str, machine_file: Path | None, impl_module: str | None, as_json: bool) -> None:
    """Re-fold an instance's journal and check it reproduces the stored snapshot.

    Exit code 4 when it does not.
    """
    from fsm.runtime.durable import replay as replay_journal
    from fsm.store import open_store

    store = open_store(store_url)
    machine = _store_machine(store, instance_id, machine_file, impl_module)
    report = replay_journal(machine, store, instance_id)
    if as_json:
        result: dict[str, Any] = {
            "instance": instance_id,
            "records": report.records,
            "matches": report.matches,
            "diverged_at": report.diverged_at,
            "message": report.message,
        }
        if not report.matches:
            result.update(stored=report.stored, replayed=report.replayed)
        click.echo(json.dumps(result, default=str))
    elif report.matches:
        click.echo(f"{instance_id}: {report.records} records replayed; the snapshot matches")
    else:
        click.echo(f"{instance_id}: replay differs at step {report.diverged_at}: {report.message}")
        click.echo(f"  stored:   {json.dumps(report.stored)}")
        click.echo(f"  replayed: {json.dumps(report.replayed)}")
    if not report.matches:
        sys.exit(EXIT_REPLAY_MISMATCH)


if __name__ == "__main__":  # pragma: no cover
    main()
