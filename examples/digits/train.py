"""Train a small MLP classifier on the digits training set.

Pixels are standardized with a ``StandardScaler``; the network is trained one
epoch at a time with ``partial_fit`` so that progress streams to the log.
The fitted pipeline is pickled to ``<out>/model.pkl`` next to a ``meta.json``
with the hyper-parameters and the final training accuracy.

Environment variables (overridden by the matching command-line options):
    EPOCHS      passes over the training set (default 30)
    LR          Adam learning rate (default 0.001)
    HIDDEN      units in the hidden layer (default 64)
    ALPHA       L2 penalty (default 0.0001)
    BATCH_SIZE  mini-batch size (default 64)
    SEED        random seed for weight init and shuffling (default 0)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.neural_network import MLPClassifier  # type: ignore
from sklearn.pipeline import Pipeline  # type: ignore
from sklearn.preprocessing import StandardScaler  # type: ignore


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="data dir")
    parser.add_argument("--out", type=Path, default=Path("model"), help="output dir")
    parser.add_argument("--epochs", type=int, default=env_int("EPOCHS", 30))
    parser.add_argument("--lr", type=float, default=env_float("LR", 0.001))
    parser.add_argument("--hidden", type=int, default=env_int("HIDDEN", 64))
    parser.add_argument("--alpha", type=float, default=env_float("ALPHA", 1e-4))
    parser.add_argument("--batch-size", type=int, default=env_int("BATCH_SIZE", 64))
    parser.add_argument("--seed", type=int, default=env_int("SEED", 0))
    return parser.parse_args()


def load_split(path: Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    with np.load(path) as npz:
        return npz["x"].astype(np.float32), npz["y"].astype(np.int64)


def main() -> None:
    args = parse_args()
    x_train, y_train = load_split(args.data / "train.npz")
    classes = np.unique(y_train)
    n_train, n_features = x_train.shape
    print(f"Training on {n_train} samples, {n_features} features", flush=True)
    print(f"Classes: {', '.join(str(c) for c in classes)}", flush=True)

    hyper: dict[str, Any] = {
        "model": "MLPClassifier",
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "hidden_units": args.hidden,
        "alpha": args.alpha,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    print(
        "Hyper-parameters: " + ", ".join(f"{k}={v}" for k, v in hyper.items()),
        flush=True,
    )

    scaler = StandardScaler().fit(x_train)
    x_scaled = scaler.transform(x_train)
    mlp = MLPClassifier(
        hidden_layer_sizes=(args.hidden,),
        solver="adam",
        learning_rate_init=args.lr,
        alpha=args.alpha,
        batch_size=args.batch_size,
        random_state=args.seed,
    )

    start = time.perf_counter()
    train_acc = 0.0
    for epoch in range(1, args.epochs + 1):
        mlp.partial_fit(x_scaled, y_train, classes=classes)
        train_acc = float(mlp.score(x_scaled, y_train))
        progress = f"epoch {epoch:3d}/{args.epochs}  loss={mlp.loss_:.4f}"
        print(f"{progress}  train_acc={train_acc:.4f}", flush=True)
    elapsed = time.perf_counter() - start
    print(f"Training finished in {elapsed:.2f}s", flush=True)

    model = Pipeline([("scaler", scaler), ("mlp", mlp)])
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with (out / "model.pkl").open("wb") as f:
        pickle.dump(model, f)
    meta = {
        "hyper_parameters": hyper,
        "n_train": len(y_train),
        "final_loss": float(mlp.loss_),
        "train_accuracy": train_acc,
        "train_seconds": round(elapsed, 3),
        "run": os.environ.get("DTRUN_RUN"),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"Training accuracy: {train_acc:.4f}", flush=True)
    print(f"Wrote {out / 'model.pkl'} and {out / 'meta.json'}", flush=True)


if __name__ == "__main__":
    main()
