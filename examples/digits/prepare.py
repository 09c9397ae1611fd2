"""Split scikit-learn's bundled digits data set into train and test sets.

The data set (1797 8x8 grey-scale images of hand-written digits) ships inside
the scikit-learn wheel, so nothing is downloaded at run time. The split is
stratified and seeded, so the output is identical on every run.

Environment variables (overridden by the matching command-line options):
    SEED       random seed for the split (default 42)
    TEST_SIZE  fraction of samples held out for testing (default 0.2)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits  # type: ignore
from sklearn.model_selection import train_test_split  # type: ignore


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="output folder")
    seed = int(os.environ.get("SEED", "42"))
    test_size = float(os.environ.get("TEST_SIZE", "0.2"))
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--test-size", type=float, default=test_size)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    digits = load_digits()
    x = np.asarray(digits.data, dtype=np.float32)
    y = np.asarray(digits.target, dtype=np.int64)
    print(f"Loaded digits: {x.shape[0]} samples, {x.shape[1]} features", flush=True)

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_size, random_state=args.seed, stratify=y
    )

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "train.npz", x=x_train, y=y_train)
    np.savez_compressed(out / "test.npz", x=x_test, y=y_test)
    info = {
        "seed": args.seed,
        "test_size": args.test_size,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "n_features": x.shape[1],
        "classes": sorted(int(c) for c in np.unique(y)),
    }
    (out / "split.json").write_text(json.dumps(info, indent=2) + "\n")

    print(f"Train set: {len(y_train)} samples", flush=True)
    print(f"Test set:  {len(y_test)} samples", flush=True)
    print(
        f"Wrote {out / 'train.npz'}, {out / 'test.npz'}, {out / 'split.json'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
