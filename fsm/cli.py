"""The ``fsm`` command line: a thin layer over the library.

Library errors (:class:`~fsm.errors.FsmError`) become clean messages and exit codes, never
tracebacks. Exit codes: 0 success, 1 invalid input (a definition, event or snapshot that
fsm refuses), 2 usage errors (click's own), 3 a machine that failed while running.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from fsm.errors import DefinitionError, FsmError, ImplementationError
from fsm.machine import Machine
from fsm.runtime.actor import Actor
from fsm.runtime.clock import VirtualClock
from fsm.semantics.snapshot import Effect, Snapshot

EXIT_INVALID = 1
EXIT_FAILED = 3


def _fail(message: str, code: int = EXIT_INVALID) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fsm", prog_name="fsm")
def main() -> None:
    """Run, check and draw XState-style statecharts."""


# -- validate ---------------------------------------------------------------------------


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
def validate(files: Sequence[Path], as_json: bool) -> None:
    """Check machine definitions; report every problem with its JSON path.

    Exit code 1 if any file has a problem.
    """
    bad = 0
    for path in files:
        try:
            machine = Machine.from_file(path)
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
        if as_json:
            click.echo(json.dumps({"file": str(path), "valid": True, "states": len(machine.model.nodes)}))
        else:
            click.echo(f"{path}: ok ({len(machine.model.nodes)} states)")
    if bad:
        sys.exit(EXIT_INVALID)


# -- schema -----------------------------------------------------------------------------


@main.command()
def schema() -> None:
    """Print the JSON Schema of the machine format (for editors and other tools)."""
    from fsm.schema import load_schema

    click.echo(json.dumps(load_schema(), indent=2))


# -- run --------------------------------------------------------------------------------


def _parse_event(text: str) -> dict[str, Any]:
    """``TYPE`` or ``TYPE:{"json": "payload"}`` or a full JSON event object."""
    text = text.strip()
    if text.startswith("{"):
        whole = json.loads(text)
        if not isinstance(whole, dict):
            raise click.BadParameter(f"not a JSON object: {text}")
        return whole
    kind, sep, payload = text.partition(":")
    event = {"type": kind}
    if sep:
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise click.BadParameter(f"the payload of {kind!r} must be a JSON object")
        event.update(data)
    return event


def _read_events(path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            yield _parse_event(line)
        except (json.JSONDecodeError, click.BadParameter) as exc:
            raise click.BadParameter(f"{path}:{number}: {exc}") from None


def _load_impl(module_name: str) -> dict[str, Any]:
    """Import a module exposing ``actions``, ``guards``, ``services``, ``delays`` dicts."""
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}") from None
    finally:
        sys.path.pop(0)
    return {k: dict(getattr(module, k, {}) or {}) for k in ("actions", "guards", "services", "delays")}


def _describe(effects: list[Effect]) -> list[str]:
    out = []
    for e in effects:
        if e.type in ("xstate.schedule", "xstate.cancel"):
            continue
        out.append(e.type if e.params in (None, {}) else f"{e.type} {json.dumps(e.params, default=str)}")
    return out


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-e", "--event", "event_texts", multiple=True, help='An event: TYPE or TYPE:{"k": 1}. Repeatable.')
@click.option(
    "--events", "events_file", type=click.Path(dir_okay=False, path_type=Path), help="A JSON Lines file of events."
)
@click.option("--context", "context_json", help="Initial context as JSON (merged over the definition's).")
@click.option("--impl", "impl_module", help="A Python module with actions/guards/services/delays dicts.")
@click.option("--advance", "advance_ms", type=float, default=0.0, help="After the events, advance virtual time by MS.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per step.")
def run(
    file: Path,
    event_texts: Sequence[str],
    events_file: Path | None,
    context_json: str | None,
    impl_module: str | None,
    advance_ms: float,
    as_json: bool,
) -> None:
    """Run a machine, printing every step as it happens.

    Actions without an implementation are printed instead of executed, so any machine
    can be explored without writing Python; guards, delays and services must be
    provided (with --impl) because they decide where the machine goes.
    """
    try:
        machine = Machine.from_file(file)
        context = json.loads(context_json) if context_json else None
        if context is not None and not isinstance(context, dict):
            raise click.BadParameter("--context must be a JSON object")
        impl = _load_impl(impl_module) if impl_module else {}
        machine = machine.provide(**impl)
        missing_actions = machine.missing_implementations().get("actions", {})
        machine = machine.provide(actions=dict.fromkeys(missing_actions, _noop))
        events = [_parse_event(t) for t in event_texts]
        if events_file:
            events.extend(_read_events(events_file))
    except click.BadParameter:
        raise
    except json.JSONDecodeError as exc:
        _fail(f"invalid JSON: {exc}")
        return
    except FsmError as exc:
        _fail(str(exc))
        return

    clock = VirtualClock()
    step_no = [0]

    def show(label: str, snapshot: Snapshot, effects: list[Effect]) -> None:
        if as_json:
            record = {
                "step": step_no[0],
                "event": label,
                "value": snapshot.value,
                "context": snapshot.context,
                "status": snapshot.status,
                "actions": [e.to_dict() for e in effects if e.type not in ("xstate.schedule", "xstate.cancel")],
            }
            if snapshot.output is not None:
                record["output"] = snapshot.output
            click.echo(json.dumps(record, default=str))
        else:
            actions = _describe(effects)
            line = f"{step_no[0]:>3}  {label:<24} -> {json.dumps(snapshot.value)}"
            if actions:
                line += f"   [{', '.join(actions)}]"
            click.echo(line)
            if snapshot.context:
                click.echo(f"     context {json.dumps(snapshot.context, default=str)}")
        step_no[0] += 1

    effects_seen: list[Effect] = []
    pending_label = ["(start)"]

    def on_inspect(record: dict[str, Any]) -> None:
        if record["type"] == "@fsm.event":
            event = record["event"]
            label = event["type"]
            if len(event) > 1:
                label += " " + json.dumps({k: v for k, v in event.items() if k != "type"}, default=str)
            pending_label[0] = label
        elif record["type"] == "@fsm.action":
            effects_seen.append(record["effect"])
        elif record["type"] == "@fsm.snapshot":
            show(pending_label[0], record["snapshot"], list(effects_seen))
            effects_seen.clear()

    try:
        actor = Actor(machine, context=context, clock=clock, inspect=on_inspect, executor="inline", logger=_echo_log)
        machine.check_implementations()
        actor.start()
        for event in events:
            if actor.snapshot.status != "active":
                click.echo(f"     machine is {actor.snapshot.status}; remaining events not sent", err=True)
                break
            actor.send(event)
        if advance_ms:
            clock.advance(advance_ms)
    except ImplementationError as exc:
        _fail(str(exc))
        return
    except FsmError as exc:
        _fail(str(exc), EXIT_FAILED)
        return
    final = actor.snapshot
    if final.status == "error":
        _fail(f"the machine failed: {final.error}", EXIT_FAILED)
    if not as_json:
        summary = f"final: {json.dumps(final.value)} ({final.status})"
        if final.output is not None:
            summary += f" output {json.dumps(final.output, default=str)}"
        click.echo(summary)


def _noop(context: Any, event: Any, params: Any) -> None:
    """Stands in for actions the command line has no implementation for."""


def _echo_log(*args: Any) -> None:
    click.echo("     log " + " ".join(json.dumps(a, default=str) if not isinstance(a, str) else a for a in args))


if __name__ == "__main__":  # pragma: no cover
    main()
