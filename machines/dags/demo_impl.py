"""Stand-in services for the example DAGs, so they run from the command line:

    fsm run machines/dags/etl_dag.yaml --impl machines.dags.demo_impl --params date=2024-06-01

Each task function is called as ``fn(input)`` (see docs/dag.md) and returns
a small, deterministic result.
"""

from __future__ import annotations

from typing import Any


def _rows(input_: Any) -> list[Any]:
    rows = (input_ or {}).get("rows")
    return list(rows) if isinstance(rows, list) else []


def fetch_orders(input_: Any) -> list[dict[str, Any]]:
    return [{"id": i, "date": input_["date"], "amount": 10 * i} for i in range(1, 4)]


def validate_orders(input_: Any) -> list[Any]:
    return [row for row in _rows(input_) if row["amount"] > 0]


def transform_orders(input_: Any) -> list[Any]:
    return [{**row, "amount_eur": row["amount"] * 0.9} for row in _rows(input_)]


def save_to_db(input_: Any) -> int:
    return len(_rows(input_))


def save_to_cache(input_: Any) -> int:
    return len(_rows(input_))


def notify(input_: Any) -> str:
    return f"loaded {input_['date']}: db {input_['db']}, cache {input_['cache']}"


def inspect(input_: Any) -> int:
    return int(input_["size"])


def choose(input_: Any) -> str:
    # a branch task returns the downstream task(s) to run
    return "full_load" if input_["rows"] > 1000 else "incremental_load"


def load(input_: Any) -> str:
    return f"{input_['kind']} load done"


def report(input_: Any) -> dict[str, Any]:
    return dict(input_)


def split(input_: Any) -> int:
    return len(input_["shards"])


def process_shard(input_: Any) -> int:
    return int(input_["shard"]) ** 2


def merge(input_: Any) -> Any:
    return input_["values"]


def compile(input_: Any) -> dict[str, Any]:
    return {"ok": True, "ref": input_.get("ref")}


def pytest(input_: Any) -> str:
    return f"tests passed on {input_.get('python')} / {input_.get('os')}"


def publish(input_: Any) -> str:
    return "published"


def summarize(input_: Any) -> dict[str, Any]:
    return dict(input_ or {})


SERVICES = (
    fetch_orders,
    validate_orders,
    transform_orders,
    save_to_db,
    save_to_cache,
    notify,
    inspect,
    choose,
    load,
    report,
    split,
    process_shard,
    merge,
    compile,
    pytest,
    publish,
    summarize,
)
services = {fn.__name__: fn for fn in SERVICES}
