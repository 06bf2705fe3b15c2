"""Computes the reference numbers for tests/references.rs with fairlearn and AIF360.

Reads a JSON list of cases (argv[1]); prints a JSON list of {name: value} per case.
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import numpy as np
import pandas as pd
from fairlearn import metrics as fl
from aif360.sklearn import metrics as am


def nan_to_none(v):
    v = float(v)
    return None if np.isnan(v) else v


def main():
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        y_true = np.array(c["y_true"])
        y_pred = np.array(c["y_pred"])
        w = np.array(c["weights"]) if c["weights"] is not None else None
        sf = pd.DataFrame(c["sensitive"])
        cols = list(c["sensitive"].keys())
        sens = sf if len(cols) > 1 else sf[cols[0]]
        r = {}
        for method in ("between_groups", "to_overall"):
            kw = dict(sensitive_features=sens, method=method, sample_weight=w)
            r[f"dpd.{method}"] = fl.demographic_parity_difference(y_true, y_pred, **kw)
            r[f"dpr.{method}"] = fl.demographic_parity_ratio(y_true, y_pred, **kw)
            r[f"eopd.{method}"] = fl.equal_opportunity_difference(y_true, y_pred, **kw)
            r[f"eopr.{method}"] = fl.equal_opportunity_ratio(y_true, y_pred, **kw)
            for agg in ("worst_case", "mean"):
                r[f"eod.{method}.{agg}"] = fl.equalized_odds_difference(y_true, y_pred, agg=agg, **kw)
                r[f"eor.{method}.{agg}"] = fl.equalized_odds_ratio(y_true, y_pred, agg=agg, **kw)
        frame = fl.MetricFrame(
            metrics={
                "selection_rate": fl.selection_rate,
                "true_positive_rate": fl.true_positive_rate,
                "false_positive_rate": fl.false_positive_rate,
                "true_negative_rate": fl.true_negative_rate,
                "false_negative_rate": fl.false_negative_rate,
                "count": fl.count,
            },
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=sens,
            sample_params={
                k: {"sample_weight": w}
                for k in ("selection_rate", "true_positive_rate", "false_positive_rate",
                          "true_negative_rate", "false_negative_rate")
            },
        )
        groups = []
        for key, row in frame.by_group.iterrows():
            key = list(key) if isinstance(key, tuple) else [key]
            groups.append({"group": [str(k) for k in key],
                           **{m: nan_to_none(row[m]) for m in frame.by_group.columns}})
        r = {k: nan_to_none(v) for k, v in r.items()}
        r["by_group"] = groups
        if c.get("privileged") is not None:
            priv = c["privileged"]
            index = pd.MultiIndex.from_frame(sf)
            yt = pd.Series(y_true, index=index)
            yp = pd.Series(y_pred, index=index)
            prot = cols if len(cols) > 1 else cols[0]
            group = tuple(priv) if len(cols) > 1 else priv[0]
            kw = dict(prot_attr=prot, priv_group=group, pos_label=1, sample_weight=w)
            r["aif360.statistical_parity_difference"] = am.statistical_parity_difference(yt, yp, **kw)
            r["aif360.disparate_impact"] = am.disparate_impact_ratio(yt, yp, **kw)
            r["aif360.equal_opportunity_difference"] = am.equal_opportunity_difference(yt, yp, **kw)
            r["aif360.average_odds_difference"] = am.average_odds_difference(yt, yp, **kw)
            r["aif360.average_abs_odds_difference"] = am.average_odds_error(yt, yp, **kw)
            for k in list(r):
                if k.startswith("aif360."):
                    r[k] = nan_to_none(r[k])
        out.append(r)
    json.dump(out, sys.stdout)


main()
