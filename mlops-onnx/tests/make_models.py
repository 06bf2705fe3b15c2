"""Builds the ONNX models the tests serve, and what onnxruntime answers on fixed inputs.

Usage: python make_models.py OUT_DIR

Writes OUT_DIR/<case>.onnx for every case and OUT_DIR/cases.json:
{case: {"inputs": {name: tensor}, "outputs": {name: tensor}, "tract": bool}} where a tensor is
{"datatype": "FP32"|"INT64"|"BYTES"|..., "shape": [...], "data": [...]} (row-major; BYTES as
strings) and "tract" says whether the pure-Rust runtime runs every operator of the graph.
Classifier probabilities that skl2onnx wraps in a ZipMap (a sequence of maps) are given as the
[N, classes] matrix, columns in the order of the ZipMap's class labels.

Needs scikit-learn, skl2onnx, onnx and onnxruntime (scripts/peers.sh pins them).
"""

import json
import sys
import warnings

import numpy as np
import pandas as pd
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType

warnings.simplefilter("ignore")

DATATYPES = {
    np.dtype("float32"): "FP32",
    np.dtype("float64"): "FP64",
    np.dtype("int64"): "INT64",
    np.dtype("int32"): "INT32",
    np.dtype("bool"): "BOOL",
}


def tensor(value):
    value = np.asarray(value)
    if value.dtype.kind in "OUS":
        return {"datatype": "BYTES", "shape": list(value.shape), "data": [str(v) for v in value.reshape(-1)]}
    return {
        "datatype": DATATYPES[value.dtype],
        "shape": list(value.shape),
        "data": value.reshape(-1).tolist(),
    }


def zipmap_labels(model):
    for node in model.graph.node:
        if node.op_type == "ZipMap":
            for a in node.attribute:
                if a.name == "classlabels_int64s" and a.ints:
                    return [int(v) for v in a.ints]
                if a.name == "classlabels_strings" and a.strings:
                    return [v.decode() for v in a.strings]
    return None


def run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, feeds)
    labels = zipmap_labels(model)
    outputs = {}
    for name, value in zip(names, results):
        if isinstance(value, list):  # a ZipMap's sequence of maps
            value = np.array([[row[k] for k in labels] for row in value], dtype=np.float32)
        outputs[name] = tensor(value)
    return outputs




def main(out):
    rng = np.random.RandomState(0)
    X, y = make_classification(300, 4, n_informative=3, n_redundant=0, random_state=0)
    X = X.astype(np.float32)
    Xm, ym = make_classification(300, 4, n_informative=3, n_redundant=0, n_classes=3, random_state=1)
    Xm = Xm.astype(np.float32)
    names = np.array(["setosa", "versicolor", "virginica"])[ym]
    Xr, yr = make_regression(300, 4, random_state=0)
    Xr = Xr.astype(np.float32)
    test = rng.randn(16, 4).astype(np.float32) * 2
    float_input = [("float_input", FloatTensorType([None, 4]))]

    cases = {}

    def add(name, model, feeds, tract):
        onnx.checker.check_model(model)
        onnx.save(model, f"{out}/{name}.onnx")
        cases[name] = {
            "inputs": {k: tensor(v) for k, v in feeds.items()},
            "outputs": run(model, feeds),
            "tract": tract,
        }

    sk = {
        "logistic_regression": (LogisticRegression().fit(X, y), True),
        "scaled_logistic_regression": (
            Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y),
            True,
        ),
        "random_forest": (RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0).fit(X, y), True),
        "mlp_classifier": (
            MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=500, random_state=0).fit(X, y),
            True,
        ),
        "gradient_boosting_regressor": (
            GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0).fit(Xr, yr),
            False,
        ),
    }
    for name, (model, tract) in sk.items():
        add(name, convert_sklearn(model, initial_types=float_input), {"float_input": test}, tract)

    # String classes: the label output is a string tensor, the ZipMap's keys are strings
    # (tract's LinearClassifier computes numeric labels only).
    multi = LogisticRegression(max_iter=500).fit(Xm, names)
    add(
        "multiclass_string_labels",
        convert_sklearn(multi, initial_types=float_input),
        {"float_input": test},
        False,
    )
    # Exported without the ZipMap: probabilities are a plain [N, C] tensor.
    plain = LogisticRegression().fit(X, y)
    add(
        "logistic_regression_no_zipmap",
        convert_sklearn(plain, initial_types=float_input, options={id(plain): {"zipmap": False}}),
        {"float_input": test},
        True,
    )

    # A mixed-type pipeline: one input per column, a string column one-hot encoded.
    num = rng.randn(300).astype(np.float32)
    cat = rng.choice(["north", "south", "east"], 300)
    label = ((num > 0) ^ (cat == "south")).astype(np.int64)


    frame = pd.DataFrame({"num": num, "cat": cat})
    ct = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [("scale", StandardScaler(), ["num"]), ("onehot", OneHotEncoder(handle_unknown="ignore"), ["cat"])]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, label)
    feeds = {
        "num": rng.randn(10, 1).astype(np.float32),
        "cat": np.array([["north"], ["south"], ["east"], ["west"], ["north"], ["south"], ["east"], ["north"], ["south"], ["east"]], dtype=object),
    }
    add(
        "column_transformer",
        convert_sklearn(ct, initial_types=[("num", FloatTensorType([None, 1])), ("cat", StringTensorType([None, 1]))]),
        feeds,
        False,
    )

    # A small convolutional network built with onnx.helper, as torch.onnx.export writes one:
    # a named batch dimension, Conv, Relu, global pooling, Flatten, Gemm and Softmax.
    w = rng.randn(4, 1, 3, 3).astype(np.float32) * 0.5
    b = rng.randn(4).astype(np.float32) * 0.1
    fc = rng.randn(3, 4).astype(np.float32)
    fcb = rng.randn(3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
            helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"], transB=1),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "small_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        [
            helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.reshape(-1)),
            helper.make_tensor("b", TensorProto.FLOAT, b.shape, b),
            helper.make_tensor("fc", TensorProto.FLOAT, fc.shape, fc.reshape(-1)),
            helper.make_tensor("fcb", TensorProto.FLOAT, fcb.shape, fcb),
        ],
    )
    cnn = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnx.helper")
    cnn.ir_version = 8
    add("small_cnn", cnn, {"input": rng.randn(5, 1, 8, 8).astype(np.float32)}, True)

    with open(f"{out}/cases.json", "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main(sys.argv[1])
