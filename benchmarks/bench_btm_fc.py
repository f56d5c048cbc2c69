"""BTM's "FC" stage (``fc_epochs``) on a pre-trained model that already handles the imbalance.

The paper (Sec. 3.3) finds BTM unsuited to a model whose pre-training handled
the imbalance, and first re-trains its classifier with cross-entropy on all
data (the "FC" stage, 10 epochs). Here the MLP head is pre-trained with
balanced softmax; per data set and seed, from that one model (shared as a
``FrozenEstimator``), with the tuned BTM options (the paper's fine-tuning
hardly moves the MLP head, see the user guide):

- ``pre-trained``: the balanced-softmax head as it is (the paper's comparison);
- ``post-training alone``: BTM with ``n_subsets=0`` (BTM's own baseline);
- ``BTM``: without the FC stage; ``BTM + FC``: with ``fc_epochs=10``.

Paired Δ: mean ± std over seeds of the row minus ``pre-trained``, and the number
of seeds where it is higher. Run ``python benchmarks/bench_btm_fc.py``.
"""


import numpy as np
from _common import format_paired, load_split, recall_means, run_datasets_seeds
from sklearn.frozen import FrozenEstimator

from sklearn_lt.ensemble import BalancedUndersampleMerger
from sklearn_lt.neural_network import MLPHeadClassifier

TUNED = {"finetune_lr": 0.02, "finetune_batch_size": "auto", "post_train_loss": "balanced_softmax",
         "post_train_sampling": "instance"}
ROWS = {
    "post-training alone (n_subsets=0)": {"n_subsets": 0},
    "BTM (tuned), no FC stage": {},
    "BTM (tuned) + FC stage (fc_epochs=10)": {"fc_epochs": 10},
}


def run(datasets, seeds):
    out = {}
    for name in datasets:
        for seed in seeds:
            # letter's integer shape statistics are standardised; the embeddings are L2-normalised
            X, y, X_test, y_test = load_split(name, seed, standardize=name == "letter", dtype=np.float32)
            pre = MLPHeadClassifier(loss="balanced_softmax", random_state=seed).fit(X, y)
            out.setdefault((name, "pre-trained (balanced softmax)"), []).append(recall_means(y_test, pre.predict(X_test)))
            for label, params in ROWS.items():
                model = BalancedUndersampleMerger(FrozenEstimator(pre), random_state=seed, **TUNED, **params)
                out.setdefault((name, label), []).append(recall_means(y_test, model.fit(X, y).predict(X_test)))
    return out


def markdown(out, datasets, header):
    lines = [
        "# BTM's FC stage on a balanced-softmax MLP head",
        "",
        (f"{header} Balanced test splits; percentages, mean over seeds. Paired Δ: row minus the "
         "pre-trained model, mean ± std (ddof=1) over seeds (seeds higher). BTM settings: tuned options "
         "(lr 0.02, batch auto, balanced-softmax post-training)."),
        "",
        "| data | model | H / G / Acc. | ΔH | ΔG | ΔAcc |",
        "|---|---|---|---|---|---|",
    ]
    for name in datasets:
        base = np.array(out[(name, "pre-trained (balanced softmax)")])
        for label in ["pre-trained (balanced softmax)", *ROWS]:
            rs = np.array(out[(name, label)])
            deltas = ["", "", ""] if label.startswith("pre-trained") else [
                format_paired(rs[:, i], base[:, i]) for i in range(3)]
            lines.append(f"| {name} | {label} | " + " / ".join(f"{v:.1f}" for v in rs.mean(0)) + " | "
                         + " | ".join(deltas) + " |")
    return "\n".join(lines)


def main(argv=None):
    run_datasets_seeds(__file__, __doc__, "btm_fc.md", run, markdown, argv)


if __name__ == "__main__":
    main()
