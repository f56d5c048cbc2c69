"""Build sklearn_lt/datasets/data/letter.npz from Debian r-cran-mlbench (UCI Letter Recognition).

apt-get download r-cran-mlbench && dpkg -x r-cran-mlbench_*.deb /tmp/debroot   # no R needed
/tmp/datavenv/bin/python benchmarks/data_build/make_letter.py
"""
import os
import time
import warnings

import numpy as np
import rdata
from _common import DEBROOT, OUT_DIR, class_summary, cv_sanity, report_file

t0 = time.time()
RDA = os.environ.get("MLBENCH_DIR", str(DEBROOT / "usr/lib/R/site-library/mlbench")) + "/data/LetterRecognition.rda"
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Unknown encoding")  # harmless: the file is ASCII
    df = rdata.read_rda(RDA)["LetterRecognition"]

y = df["lettr"].astype(str).to_numpy().astype(str)           # 'A'..'Z'
feats = df.drop(columns="lettr")
feature_names = np.array(feats.columns, dtype=str)
Xi = feats.to_numpy()
assert Xi.shape == (20000, 16) and Xi.min() >= 0 and Xi.max() <= 255 and np.all(Xi == np.round(Xi))
X = Xi.astype(np.uint8)
assert set(np.unique(y)) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

OUT_DIR.mkdir(parents=True, exist_ok=True)
out = OUT_DIR / "letter.npz"
np.savez_compressed(out, X=X, y=y, feature_names=feature_names)
print(f"built in {time.time() - t0:.1f} s")
report_file(out)
print("feature_names:", list(feature_names))
print("X range:", X.min(), X.max())
class_summary(y)
cv_sanity(X, y)
