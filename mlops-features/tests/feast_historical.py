"""Feast's own answer to a historical retrieval, for mlops-features/tests/feast.rs.

Reads a case file (JSON: the repo folder, the Parquet sources, the views, the entity rows'
Parquet file and the feature references), defines the same objects in a Feast repo with the
DuckDB offline store, and prints `{"full": [...], "short": [...]}`: for each entity row (by its
`row_id` label), the value of every feature, with `full_feature_names` on and off. NaN and
missing values print as null.
"""

import json
import math
import os
import sys
import warnings
from datetime import timedelta

warnings.simplefilter("ignore")
os.environ.setdefault("FEAST_USAGE", "False")

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.types import Float32, Float64, Int32, Int64, String, Bool

TYPES = {"Int32": Int32, "Int64": Int64, "Float32": Float32, "Float64": Float64, "String": String, "Bool": Bool}

case = json.load(open(sys.argv[1]))
repo = case["repo"]
os.makedirs(os.path.join(repo, "data"), exist_ok=True)
with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
    f.write(
        f"""project: {case['project']}
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

entities = {e["name"]: Entity(name=e["name"], join_keys=e["join_keys"]) for e in case["entities"]}
objects = list(entities.values())
for v in case["views"]:
    source = FileSource(
        name=v["source"],
        path=v["path"],
        timestamp_field=v["timestamp_field"],
        created_timestamp_column=v.get("created_timestamp_column") or "",
    )
    schema = [Field(name=k["name"], dtype=TYPES[k["dtype"]]) for k in v["keys"]]
    schema += [Field(name=f["name"], dtype=TYPES[f["dtype"]]) for f in v["features"]]
    objects.append(source)
    objects.append(
        FeatureView(
            name=v["name"],
            entities=[entities[e] for e in v["entities"]],
            ttl=timedelta(seconds=v["ttl_seconds"]) if v.get("ttl_seconds") else timedelta(0),
            schema=schema,
            online=True,
            source=source,
        )
    )

store = FeatureStore(repo_path=repo)
store.apply(objects)

entity_df = pd.read_parquet(case["entity_rows"])
entity_df["event_timestamp"] = pd.to_datetime(entity_df["event_timestamp"], utc=True)


def plain(x):
    if x is None:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    if x is pd.NA or x is pd.NaT:
        return None
    if hasattr(x, "item"):
        x = x.item()
        if isinstance(x, float) and math.isnan(x):
            return None
    return x


out = {}
for full in (True, False):
    df = store.get_historical_features(
        entity_df=entity_df, features=case["features"], full_feature_names=full
    ).to_df()
    names = [
        (r.split(":")[0] + "__" + r.split(":")[1]) if full else r.split(":")[1]
        for r in case["features"]
    ]
    rows = {}
    for rec in df.to_dict(orient="records"):
        rows[str(int(rec["row_id"]))] = {n: plain(rec.get(n)) for n in names}
    out["full" if full else "short"] = rows
print(json.dumps(out))
