"""The MLOps loop in Python, end to end, on the embedded default store (./mlops-data):

1. data      customers with a churn label, versioned as a dataset;
2. train     a logistic regression on candle as a tracked run, registered as `churn-python`, with its
             reference profile for drift monitoring;
3. govern    the shipped Rego library gates the `champion` alias: denied until a reviewer
             approves, then allowed; every decision is hash-chained in the store;
4. serve     `models:/churn-python@champion` through the deploy gate, over the Open Inference Protocol
             on 127.0.0.1, queried with the protocol's client;
5. drift     production shifts; drift against the champion's profile (HTML report written);
6. retrain   on production data; the challenger must beat the champion on fresh production
             rows, takes 20% of traffic as a canary, then becomes champion.

Run it with:  python examples/python/quickstart.py [--store URL] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
import pyarrow as pa

import mlops

PLANS = np.array(["basic", "plus", "pro"])
# Beside the Rust quickstart's `churn` in the same default store.
MODEL = "churn-python"


def customers(n: int, seed: int, shift: float = 0.0) -> pa.Table:
    """Tenure, charges, support calls and plan; `churned` from a logistic rule. `shift` moves
    production: longer tenure, higher charges, more "pro" customers — who start to leave."""
    rng = np.random.default_rng(seed)
    tenure = np.round(rng.uniform(0, 60, n) + shift * 30)
    plan = np.where(rng.uniform(size=n) < 0.2 + shift * 0.5, 2, rng.integers(0, 2, n))
    charges = np.round(30 + 25 * plan + rng.normal(0, 8, n) + shift * 25, 2)
    calls = rng.integers(0, 6, n)
    pro = (plan == 2).astype(float)
    z = -0.06 * tenure + 0.04 * (charges - 60) + 0.5 * calls - 0.6 * pro + 0.5
    z += shift * (2.5 * pro + 0.03 * tenure - 1.5)
    churned = rng.uniform(size=n) < 1 / (1 + np.exp(-z))
    return pa.table(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls.astype(np.int64),
            "plan": PLANS[plan],
            "churned": churned,
        }
    )


def features(table: pa.Table) -> dict[str, Any]:
    """The model's inputs as arrays, by name."""
    return {
        name: table.column(name).to_numpy(zero_copy_only=False)
        for name in ("tenure_months", "monthly_charges", "support_calls", "plan")
    }


def accuracy(model: mlops.Model, table: pa.Table) -> float:
    predicted = model.predict(table)["label"]
    return float(np.mean(predicted == table.column("churned").to_numpy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=os.environ.get("MLOPS_STORE", "./mlops-data"))
    parser.add_argument("--out", default="quickstart-out")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    mlops.set_store(args.store)
    mlops.set_experiment("quickstart-python")

    # 1. Data: a new version of `customers-python` on every run.
    data = mlops.write_dataset("customers-python", customers(4000, seed=7), metadata={"source": "generated"})
    print(f"1. data      {data.reference()}: {data.rows} rows, {len(data.schema)} columns")

    # 2. Train: a tracked run (params, per-epoch metrics, the model's files, the dataset input).
    champion = mlops.train(
        data.reference(), "churned", "logistic",
        register=MODEL, run_name="champion", epochs=40, learning_rate=0.05, batch_size=128,
    )
    assert champion.version is not None
    v1 = champion.version.version
    reference = mlops.read_dataset(data.reference())
    registry = mlops.get_registry()
    mlops.profile(reference, columns=list(features(reference.to_pyarrow()))).attach(registry, MODEL, v1)
    print(f"2. train     {MODEL} v{v1}: val_accuracy {champion.metrics['val_accuracy']:.3f} (run {champion.run_id})")

    # 3. Govern: champion needs approval and val_accuracy >= 0.7 (and a git commit and a dataset
    #    version in its lineage, when run from a git checkout).
    engine = mlops.PolicyEngine(
        library=True,
        data={"mlops": {"thresholds": {"val_accuracy": {"min": 0.7}},
                        "disabled": [] if mlops.current_git_commit() else ["lineage"]}},
    )
    governed = mlops.Registry(mlops.get_store(), policy=engine)
    try:
        governed.set_registered_model_alias(MODEL, "champion", v1)
        raise SystemExit("the gate should have asked for approval")
    except mlops.PolicyDenied as denied:
        print(f"3. govern    champion denied: {denied}")
    governed.set_model_version_tag(MODEL, v1, "approved", "true")
    governed.set_registered_model_alias(MODEL, "champion", v1)
    print(f"             approved, {MODEL} v{v1} is champion")

    # 4. Serve: by URI through the deploy gate, over HTTP on 127.0.0.1.
    server = mlops.Server(registry=governed, policy=engine)
    server.load(MODEL, f"models:/{MODEL}@champion")
    production = customers(1000, seed=11, shift=1.0)
    with server.serve(port=0) as http:
        client = mlops.InferenceClient(http.url)
        answer = client.infer(MODEL, {k: v[:200] for k, v in features(production).items()})
        live = float(np.mean(answer["label"] == production.column("churned").to_numpy()[:200]))
        print(f"4. serve     {http.url}: one request of 200 rows, live accuracy {live:.3f}")

        # 5. Drift: production against the champion's stored profile.
        profile = mlops.Profile.for_version(registry, MODEL, v1)
        report = mlops.detect(profile, production, reference_name="customers", current_name="production")
        report.save_html(os.path.join(args.out, "drift-python.html"))
        drifted = [c for c, r in report.columns.items() if r["drifted"]]
        print(f"5. drift     dataset drift {report.dataset_drift}: {', '.join(drifted) or 'none'} "
              f"(report in {args.out}/drift-python.html)")

        # 6. Retrain on labelled production data; the challenger must beat the champion on
        #    fresh production rows before it takes traffic.
        labelled = mlops.write_dataset("customers-python-production", production)
        challenger = mlops.train(
            labelled.reference(), "churned", "logistic",
            register=MODEL, run_name="challenger", epochs=40, learning_rate=0.05, batch_size=128,
        )
        assert challenger.version is not None
        v2 = challenger.version.version
        holdout = customers(1000, seed=13, shift=1.0)
        old, new = accuracy(champion, holdout), accuracy(challenger, holdout)
        print(f"6. retrain   {MODEL} v{v2}: holdout accuracy {new:.3f} vs champion {old:.3f}")
        if new > old:
            governed.set_model_version_tag(MODEL, v2, "approved", "true")
            governed.set_registered_model_alias(MODEL, "canary", v2)
            server.load(MODEL, f"models:/{MODEL}@canary")
            server.set_routing(MODEL, v1, canary_version=v2, canary_percent=20)
            client.infer(MODEL, {k: v[:50] for k, v in features(holdout).items()})
            governed.set_registered_model_alias(MODEL, "champion", v2)
            server.clear_routing(MODEL)
            print(f"             canary at 20%, then promoted: {MODEL} v{v2} is champion")
        else:
            print("             the champion stays")

    verified = mlops.verify_decision_log(mlops.get_store())
    if not verified["ok"]:
        raise SystemExit(f"the decision log does not verify: {verified['first_bad']}")
    print(f"   decisions {verified['head']['entries']} in the hash-chained log, verified")
    best = mlops.search_runs(order_by=["metrics.val_accuracy DESC"], max_results=1).to_pyarrow()
    print(f"   best run  {best.column('run_name')[0]} (val_accuracy {best.column('metrics.val_accuracy')[0]})")


if __name__ == "__main__":
    main()
