"""Evaluate the trained digits model on the held-out test set.

Prints the accuracy, a per-class report and the confusion matrix, and writes
them to ``<out>/metrics.json``. The last line printed is always
``Test accuracy: <value>``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (  # type: ignore
    accuracy_score,
    classification_report,
    confusion_matrix,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="test set")
    parser.add_argument("--model", type=Path, default=Path("model"), help="model dir")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output dir")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with np.load(args.data / "test.npz") as npz:
        x_test = npz["x"].astype(np.float32)
        y_test = npz["y"].astype(np.int64)
    # The model file is produced by our own train workflow, so unpickling it is safe.
    with (args.model / "model.pkl").open("rb") as f:
        model: Any = pickle.load(f)
    print(f"Evaluating {args.model} on {len(y_test)} test samples", flush=True)

    y_pred = np.asarray(model.predict(x_test))
    accuracy = float(accuracy_score(y_test, y_pred))
    labels = sorted(int(c) for c in np.unique(y_test))
    names = [str(c) for c in labels]
    matrix = confusion_matrix(y_test, y_pred, labels=labels)

    print("\nPer-class report:", flush=True)
    opts: dict[str, Any] = {"labels": labels, "target_names": names}
    print(classification_report(y_test, y_pred, digits=4, **opts))
    print("Confusion matrix (rows: true digit, columns: predicted digit):")
    print("      " + " ".join(f"{n:>4}" for n in names))
    for name, row in zip(names, matrix, strict=True):
        print(f"  {name:>2}: " + " ".join(f"{int(v):4d}" for v in row))
    print(flush=True)

    report = classification_report(y_test, y_pred, output_dict=True, **opts)
    metrics = {
        "accuracy": accuracy,
        "n_test": len(y_test),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "per_class": {n: report[n] for n in names},
        "confusion_matrix": matrix.tolist(),
        "labels": labels,
        "run": os.environ.get("DTRUN_RUN"),
    }
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"Wrote {out / 'metrics.json'}", flush=True)
    print(f"Test accuracy: {accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
