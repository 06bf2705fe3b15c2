"""Reference numbers for tests/references.rs: scikit-learn's permutation importance and
shap's LinearExplainer and KernelExplainer on the data the test writes (argv[1])."""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import numpy as np
import shap
from sklearn.ensemble._bagging import _generate_indices
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression

case = json.load(open(sys.argv[1]))
X = np.array(case["x"])
y = np.array(case["y"])
label = np.array(case["label"])
out = {}

# Permutation importance of a linear regression scored by R², and the permutations it drew.
reg = LinearRegression().fit(X, y)
seed, repeats, share = 3, 4, 0.7
pi = permutation_importance(reg, X, y, n_repeats=repeats, random_state=seed, max_samples=share)
rs = np.random.RandomState(seed)
column_seed = rs.randint(np.iinfo(np.int32).max + 1)
r = np.random.RandomState(column_seed)
n_rows = int(share * X.shape[0])
rows = _generate_indices(random_state=r, bootstrap=False, n_population=X.shape[0], n_samples=n_rows)
shuffling = np.arange(n_rows)
order = np.arange(n_rows)
orders = []
for _ in range(repeats):
    r.shuffle(shuffling)
    order = order[shuffling]
    orders.append(order.tolist())
out["regression"] = {"coef": reg.coef_.tolist(), "intercept": float(reg.intercept_)}
out["importance"] = {
    "rows": rows.tolist(), "orders": orders,
    "mean": pi.importances_mean.tolist(), "std": pi.importances_std.tolist(),
    "importances": pi.importances.tolist(),
}

# SHAP of a logistic regression: exact linear (margin) and KernelSHAP on the probability.
clf = LogisticRegression(max_iter=1000).fit(X, label)
background, explained = X[:case["background"]], X[case["background"]:case["background"] + case["explained"]]
out["logistic"] = {"coef": clf.coef_[0].tolist(), "intercept": float(clf.intercept_[0])}
lin = shap.LinearExplainer(clf, background)
out["linear"] = {"values": lin.shap_values(explained).tolist(), "base": float(np.ravel(lin.expected_value)[0])}
prob = lambda Z: clf.predict_proba(Z)[:, 1]
for link in ("identity", "logit"):
    k = shap.KernelExplainer(prob, background, link=link)
    values = k.shap_values(explained, l1_reg=False, silent=True)
    out[f"kernel_{link}"] = {"values": np.asarray(values).tolist(), "base": float(k.expected_value)}
json.dump(out, sys.stdout)
