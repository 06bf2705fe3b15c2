"""scikit-learn autologging through an mlops server, with MLflow's defaults (models logged as
MLflow 3 LoggedModels), then registering the logged model and serving it back with
`mlflow.pyfunc.load_model("models:/...")`: what a user tries first. Run by tests/server.rs
with a case file {"tracking_uri": ...}; prints the ids it created as JSON."""

import json
import urllib.request

from mlflow_case import start

case, answer = start()

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

client = MlflowClient()
mlflow.set_experiment("sklearn-autolog")
X, y = make_classification(n_samples=200, n_features=5, random_state=0)

mlflow.sklearn.autolog()  # MLflow's defaults: log_models=True, datasets, metrics, params
with mlflow.start_run(run_name="autolog") as run:
    model = LogisticRegression(C=0.5, max_iter=200).fit(X, y)
run_id = run.info.run_id
mlflow.sklearn.autolog(disable=True)

logged = client.get_run(run_id)
assert logged.data.params["C"] == "0.5", logged.data.params
assert logged.data.params["max_iter"] == "200", logged.data.params
train_score = logged.data.metrics["training_score"]
assert abs(train_score - model.score(X, y)) < 1e-9, (train_score, model.score(X, y))
assert "training_accuracy_score" in logged.data.metrics, logged.data.metrics
assert logged.data.tags["estimator_name"] == "LogisticRegression", logged.data.tags
assert len(logged.inputs.dataset_inputs) >= 1, logged.inputs

# Autologging logged the model as a LoggedModel whose source is this run.
models = mlflow.search_logged_models(
    experiment_ids=[run.info.experiment_id],
    filter_string=f"source_run_id = '{run_id}'",
    output_format="list",
)
assert len(models) == 1, models
logged_model = models[0]
assert logged_model.status.to_int() == 2 or str(logged_model.status).endswith("READY"), logged_model
assert logged_model.source_run_id == run_id

# Register it by the run's path, as the docs show, and serve it by registry URI.
version = mlflow.register_model(f"runs:/{run_id}/model", "autologged")
assert version.version == "1", version
client.set_registered_model_alias("autologged", "champion", version.version)
served = mlflow.pyfunc.load_model("models:/autologged@champion")
predicted = served.predict(X[:20])
assert np.array_equal(np.asarray(predicted), model.predict(X[:20])), predicted

# And a model logged explicitly and registered in the same call.
with mlflow.start_run(run_name="explicit") as run2:
    info = mlflow.sklearn.log_model(
        model, name="clf", registered_model_name="explicit-clf", input_example=X[:2]
    )
mv = client.get_model_version("explicit-clf", "1")
assert mv.source == f"models:/{info.model_id}", mv.source
# MLflow's entity drops the proto's model_id; the REST answer carries it, as MLflow's server's does.
raw = json.load(urllib.request.urlopen(
    f"{case['tracking_uri']}/api/2.0/mlflow/model-versions/get?name=explicit-clf&version=1"))
assert raw["model_version"]["model_id"] == info.model_id, raw
assert mv.run_id == run2.info.run_id, (mv.run_id, run2.info.run_id)
download = client.get_model_version_download_uri("explicit-clf", "1")
assert download.endswith(f"/models/{info.model_id}/artifacts"), download
second = mlflow.pyfunc.load_model("models:/explicit-clf/1")
assert np.array_equal(np.asarray(second.predict(X[:20])), model.predict(X[:20]))
loaded = mlflow.sklearn.load_model(info.model_uri)
assert np.array_equal(loaded.predict(X[:20]), model.predict(X[:20]))

# Two models of one name in one run: registering by the run's path takes the one logged at the
# latest step (from the run's outputs), as MLflow's registry does.
flipped = LogisticRegression(max_iter=200).fit(X, 1 - y)
with mlflow.start_run(run_name="twice") as run3:
    mlflow.sklearn.log_model(model, name="twice", step=0)
    mlflow.sklearn.log_model(flipped, name="twice", step=5)
outputs = client.get_run(run3.info.run_id).outputs.model_outputs
assert sorted(o.step for o in outputs) == [0, 5], outputs
mlflow.register_model(f"runs:/{run3.info.run_id}/twice", "twice")
latest = mlflow.pyfunc.load_model("models:/twice/1")
assert np.array_equal(np.asarray(latest.predict(X[:20])), flipped.predict(X[:20]))

print(
    json.dumps(
        {
            "run_id": run_id,
            "model_id": logged_model.model_id,
            "explicit_run_id": run2.info.run_id,
            "explicit_model_id": info.model_id,
        }
    ),
    file=answer,
)
