"""What the MLflow client scripts of tests/server.rs share: read the case file named on the
command line ({"tracking_uri": ...}), point MLflow's client at the server under test, and keep
stdout for the script's JSON answer (MLflow prints "View run …" lines). Import it before
`mlflow`."""

import json
import os
import sys


def start():
    """Returns the case and the stream the JSON answer goes to."""
    with open(sys.argv[1]) as f:
        case = json.load(f)
    answer, sys.stdout = sys.stdout, sys.stderr
    os.environ["MLFLOW_TRACKING_URI"] = case["tracking_uri"]
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    return case, answer
