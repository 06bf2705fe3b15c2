"""MLflow's own run-search parser and evaluator (mlflow.utils.search_utils.SearchUtils) on a case
file {"runs": [{"id", "tags", "params", "metrics"}], "filters": [...]}: for each filter, the ids
of the matching runs, or {"error": message} when MLflow refuses it."""

import json
import sys

from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchUtils

case = json.load(open(sys.argv[1]))
runs = []
for i, r in enumerate(case["runs"]):
    info = RunInfo(
        run_id=r["id"],
        experiment_id="0",
        user_id="alice",
        status="FINISHED",
        start_time=i,
        end_time=i + 1,
        lifecycle_stage="active",
        run_name=f"run-{r['id']}",
    )
    data = RunData(
        metrics=[Metric(k, v, 0, 0) for k, v in r["metrics"].items()],
        params=[Param(k, v) for k, v in r["params"].items()],
        tags=[RunTag(k, v) for k, v in r["tags"].items()],
    )
    runs.append(Run(info, data))

out = []
for f in case["filters"]:
    try:
        out.append({"ids": sorted(r.info.run_id for r in SearchUtils.filter(runs, f))})
    except MlflowException as e:
        out.append({"error": e.message})
print(json.dumps(out))
