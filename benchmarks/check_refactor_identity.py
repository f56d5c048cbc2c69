"""Check that a pure refactor leaves fitted models bit-identical.

Fits BalancedUndersampleMerger, LearnedNCM, MultiNCM and AlphaNetClassifier with
small settings on the bundled letter data (seeds 0 and 1) and saves the test
split's ``predict_proba``. Run once before the refactor with ``--save`` and once
after with ``--compare``; the second run fails unless every array is bit-identical.

    PYTHONPATH=. python benchmarks/check_refactor_identity.py --save /tmp/before.npz
    PYTHONPATH=. python benchmarks/check_refactor_identity.py --compare /tmp/before.npz
"""

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sklearn_lt.datasets import load_long_tailed  # noqa: E402
from sklearn_lt.ensemble import BalancedUndersampleMerger  # noqa: E402
from sklearn_lt.linear_model import AlphaNetClassifier  # noqa: E402
from sklearn_lt.prototypes import LearnedNCM, MultiNCM  # noqa: E402

torch.set_num_threads(1)


def estimators(seed):
    return {
        "btm": BalancedUndersampleMerger(
            n_subsets=2, finetune_epochs=2, post_train_epochs=2, fc_epochs=1, random_state=seed
        ),
        "btm_soup": BalancedUndersampleMerger(
            n_subsets=3, finetune_epochs=2, post_train_epochs=1, merge="greedy_soup",
            validation_fraction=0.2, finetune_mixup=0.2, random_state=seed,
        ),
        "learned_ncm": LearnedNCM(max_epochs=3, random_state=seed),
        "multi_ncm": MultiNCM(max_epochs=3, random_state=seed),
        "alphanet": AlphaNetClassifier(max_epochs=3, min_epochs=1, random_state=seed),
    }


def run():
    out = {}
    for seed in (0, 1):
        data = load_long_tailed("letter", random_state=seed)
        for name, est in estimators(seed).items():
            est.fit(data.X_train, data.y_train)
            out[f"{name}_seed{seed}"] = est.predict_proba(data.X_test)
            print(f"{name} seed {seed}: done", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", help="write the outputs to this .npz")
    group.add_argument("--compare", help="compare the outputs with this .npz")
    args = parser.parse_args()
    out = run()
    if args.save:
        np.savez(args.save, **out)
        print(f"saved {len(out)} arrays to {args.save}")
        return
    before = np.load(args.compare)
    assert set(before.files) == set(out), (sorted(before.files), sorted(out))
    for key in sorted(out):
        assert before[key].dtype == out[key].dtype and np.array_equal(before[key], out[key]), key
        print(f"{key}: bit-identical {out[key].shape}")
    print(f"all {len(out)} outputs bit-identical")


if __name__ == "__main__":
    main()
