"""Sets up a Feast repo for mlops-cli/tests/features_http.rs: the same definitions as the test's
features.yaml (an entity, a file source behind a push source, one view, one service), applied and
materialized over the test's window, so that `feast serve` answers from its sqlite online store.

The source's timestamps are microseconds: with second-resolution Parquet timestamps Feast's
materialization stores event times its sqlite store reads back as 1970-01-01T00:00:01Z (seconds
taken for nanoseconds), and its dask file store fails outright.

Usage: python feast_serve_setup.py case.json  (case: repo, source, start, end as RFC 3339)
"""

import contextlib
import json
import os
import sys
import warnings
from datetime import datetime, timedelta

warnings.simplefilter("ignore")
os.environ.setdefault("FEAST_USAGE", "False")

from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, PushSource
from feast.types import Float64, Int64, String

case = json.load(open(sys.argv[1]))
repo = case["repo"]
os.makedirs(os.path.join(repo, "data"), exist_ok=True)
with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
    f.write(
        """project: shop
registry: data/registry.db
provider: local
offline_store:
  type: duckdb
online_store:
  type: sqlite
  path: data/online.db
entity_key_serialization_version: 3
"""
    )

customer = Entity(name="customer", join_keys=["customer_id"])
batch = FileSource(
    name="stats_file",
    path=case["source"],
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
push = PushSource(name="stats", batch_source=batch)
view = FeatureView(
    name="customer_stats",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[
        Field(name="customer_id", dtype=Int64),
        Field(name="spend", dtype=Float64),
        Field(name="tier", dtype=String),
        Field(name="visits", dtype=Int64),
    ],
    online=True,
    source=push,
)
service = FeatureService(name="scoring", features=[view])

parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
# Feast reports progress on stdout; this script's stdout is its JSON answer.
with contextlib.redirect_stdout(sys.stderr):
    store = FeatureStore(repo_path=repo)
    store.apply([customer, batch, push, view, service])
    store.materialize(parse(case["start"]), parse(case["end"]))
print(json.dumps({"ok": True}))
