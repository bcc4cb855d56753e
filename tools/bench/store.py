"""Benchmark of durable instances: how fast steps commit, instances are created and
instances resume, on SQLite (synchronous=FULL and NORMAL) and PostgreSQL.

    python tools/bench/store.py            # the full run
    python tools/bench/store.py --quick    # fewer operations (same journal lengths)
    python tools/bench/store.py --json     # one JSON object instead of the table

Measured per backend:

- ``create/s``: instances created per second (``machine.start(store=..., instance_id=...)``:
  the initial step, its journal record and its outbox row, in one transaction);
- ``step/s``: durable steps per second on one instance (``actor.send``: compute, commit
  journal + snapshot in one transaction); ``+effect``: the same with one custom action per
  step (outbox row written with the step, then marked done: a second transaction);
- ``rr step/s``: steps sent round-robin over many live instances (1,000 in the full run);
- ``resume ms @N``: median time of ``machine.resume(store, id)`` for an instance whose
  journal holds N records (10, 1,000, 100,000; the long journals are bulk-loaded in one
  transaction, which is how they are built quickly). Restoring reads the stored snapshot,
  not the journal, so the three should be about equal.

PostgreSQL comes from ``FSM_BENCH_POSTGRES_DSN`` (else ``FSM_TEST_POSTGRES_DSN``, else
``postgresql://postgres@127.0.0.1:5432/test``); the benchmark works in a fresh schema it
drops at the end, and is skipped (with a note) when no server answers. SQLite files go to
a temporary directory (``--dir`` to choose the disk).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import fsm
from fsm.store import SQLStore, open_store

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"

COUNTER: dict[str, Any] = {
    "id": "bench",
    "initial": "on",
    "context": {"n": 0},
    "states": {
        "on": {
            "on": {
                "INC": {"actions": {"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}},
                "NOTE": {"actions": [{"type": "assign", "assignment": {"n": {"expr": "context.n + 1"}}}, "note"]},
            }
        }
    },
}
MACHINE = fsm.Machine.from_dict(COUNTER).provide(actions={"note": lambda ctx, ev, params: None})
JOURNALS = (10, 1_000, 100_000)
JOURNAL_COLUMNS = "instance_id, seq, event, event_id, timer, now, value, status, effects, extra, recorded_at"
UPDATE = "UPDATE fsm_instances SET version = ?, snapshot = ? WHERE id = ?"

# (journal rows, (version, snapshot JSON, instance id)): loaded in one transaction
BulkLoad = Callable[[list[tuple[Any, ...]], tuple[int, str, str]], None]


# -- backends ---------------------------------------------------------------------------------


class Backend:
    def __init__(self, name: str, url: str, options: dict[str, Any], bulk: BulkLoad) -> None:
        self.name = name
        self.url = url
        self.options = options
        self.bulk = bulk

    def open(self) -> SQLStore:
        return open_store(self.url, **self.options)


def sqlite_backend(directory: Path, synchronous: str) -> Backend:
    import sqlite3

    path = directory / f"bench-{synchronous.lower()}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

    def bulk(rows: list[tuple[Any, ...]], update: tuple[int, str, str]) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO fsm_journal ({JOURNAL_COLUMNS}) VALUES ({', '.join('?' * 11)})", rows)
        conn.execute(UPDATE, update)
        conn.execute("COMMIT")
        conn.close()

    return Backend(f"SQLite synchronous={synchronous}", f"sqlite:///{path}", {"synchronous": synchronous}, bulk)


def with_schema(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@contextmanager
def postgres_backend(dsn: str) -> Iterator[Backend | str]:
    """A Backend in a fresh schema (dropped afterwards), or why there is none."""
    try:
        import psycopg

        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except Exception as exc:
        yield f"PostgreSQL skipped: {type(exc).__name__}: {str(exc).strip()}"
        return
    schema = f"fsm_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    url = with_schema(dsn, schema)

    def bulk(rows: list[tuple[Any, ...]], update: tuple[int, str, str]) -> None:
        with psycopg.connect(url) as conn, conn.cursor() as cur:  # one transaction
            with cur.copy(f"COPY fsm_journal ({JOURNAL_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(UPDATE.replace("?", "%s"), update)

    try:
        version = admin.execute("SHOW server_version").fetchone()
        yield Backend(f"PostgreSQL {version[0].split()[0] if version else ''}".strip(), url, {}, bulk)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


# -- measurements -----------------------------------------------------------------------------


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def measure(backend: Backend, sizes: dict[str, int]) -> dict[str, Any]:
    store = backend.open()
    result: dict[str, Any] = {"backend": backend.name}
    clock = fsm.VirtualClock()

    # instances created per second (they are the round-robin set below)
    ids = [f"rr-{i}" for i in range(sizes["instances"])]
    t0 = time.perf_counter()
    actors = [MACHINE.start(store=store, instance_id=i, clock=clock) for i in ids]
    result["create/s"] = rate(len(ids), time.perf_counter() - t0)

    # steps on one instance, without and with an effect
    one = MACHINE.start(store=store, instance_id="one", clock=clock)
    for event, key in (("INC", "step/s"), ("NOTE", "+effect step/s")):
        t0 = time.perf_counter()
        for _ in range(sizes["steps"]):
            one.send(event)
        result[key] = rate(sizes["steps"], time.perf_counter() - t0)

    # round-robin over many live instances
    t0 = time.perf_counter()
    for i in range(sizes["rr_steps"]):
        actors[i % len(actors)].send("INC")
    result[f"rr step/s ({len(actors)})"] = rate(sizes["rr_steps"], time.perf_counter() - t0)
    for actor in actors:
        actor.stop()

    # resume latency against journal length
    for length in JOURNALS:
        instance_id = f"long-{length}"
        build_journal(backend, store, instance_id, length)
        samples = []
        for _ in range(sizes["resumes"]):
            t0 = time.perf_counter()
            actor = MACHINE.resume(store, instance_id, clock=clock)
            samples.append(time.perf_counter() - t0)
            actor.stop()
        assert actor.version == length - 1
        result[f"resume ms @{length:,}"] = statistics.median(samples) * 1e3
    store.close()
    return result


def build_journal(backend: Backend, store: SQLStore, instance_id: str, length: int) -> None:
    """An instance whose journal holds ``length`` records: one real step, then the rest
    bulk-loaded as copies of it, with the snapshot and version moved along."""
    actor = MACHINE.start(store=store, instance_id=instance_id, clock=fsm.VirtualClock())
    actor.send("INC")
    actor.stop()
    record = store.history(instance_id)[1]
    now = time.time()
    rows = [
        (
            instance_id,
            seq,
            json.dumps(record.event),
            f"bulk-{seq}",
            None,
            record.now,
            json.dumps(record.value),
            record.status,
            json.dumps(record.effects),
            None,
            now,
        )
        for seq in range(2, length)
    ]
    snapshot = {**store.load(instance_id).snapshot, "context": {"n": length - 1}}
    backend.bulk(rows, (length - 1, json.dumps(snapshot), instance_id))


# -- output -----------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    columns = [k for k in results[0] if k != "backend"]
    width = max(len(r["backend"]) for r in results)
    lines = [f"| {'backend':<{width}} | " + " | ".join(columns) + " |"]
    lines.append(f"|{'-' * (width + 2)}|" + "|".join("-" * (len(c) + 2) for c in columns) + "|")
    for r in results:
        cells = []
        for c in columns:
            value = r[c]
            text = f"{value:,.2f}" if "ms" in c else f"{value:,.0f}"
            cells.append(f"{text:>{len(c)}}")
        lines.append(f"| {r['backend']:<{width}} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations (a minute or less)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--dir", type=Path, help="directory for the SQLite files (default: a temporary one)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    if args.quick:
        sizes = {"instances": 1_000, "steps": 300, "rr_steps": 1_000, "resumes": 15}
    else:
        sizes = {"instances": 1_000, "steps": 3_000, "rr_steps": 5_000, "resumes": 50}

    notes: list[str] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for synchronous in ("FULL", "NORMAL"):
            results.append(measure(sqlite_backend(Path(tmp), synchronous), sizes))
            print(f"done: SQLite {synchronous}", file=sys.stderr)
    if not args.no_postgres:
        dsn = os.environ.get("FSM_BENCH_POSTGRES_DSN") or os.environ.get("FSM_TEST_POSTGRES_DSN") or DEFAULT_DSN
        with postgres_backend(dsn) as pg:
            if isinstance(pg, str):
                notes.append(pg)
            else:
                results.append(measure(pg, sizes))
                print("done: PostgreSQL", file=sys.stderr)

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python tools/bench/store.py" + (" --quick" if args.quick else ""),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "sizes": sizes,
        "notes": notes,
    }
    if args.json:
        print(json.dumps({**meta, "results": results}, indent=2))
    else:
        print(table(results))
        print()
        print(
            f"{meta['date']}; {meta['command']}; Python {meta['python']}; {meta['machine']}; "
            f"{sizes['steps']} steps, {sizes['rr_steps']} round-robin steps over {sizes['instances']} instances, "
            f"median of {sizes['resumes']} resumes"
        )
        for line in notes:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
