"""Build sklearn_lt/datasets/data/wordnet_supersenses_minilm.npz (WordNet 3.0 synsets -> supersense, MiniLM text features).

apt-get download wordnet-base && dpkg -x wordnet-base_*.deb /tmp/debroot
/tmp/datavenv/bin/python benchmarks/data_build/make_wordnet.py
"""
import os
import re
import time

import numpy as np
from _common import DEBROOT, cap_per_class, cv_sanity, embed_and_save

MIN_PER_CLASS, MAX_PER_CLASS = 200, 600
WN = os.environ.get("WN_DIR", str(DEBROOT / "usr/share/wordnet"))
# lexicographer file names, indexed by lex_filenum (WordNet 3.0 lexnames file)
LEXNAMES = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
            "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
            "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation "
            "noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
            "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception "
            "verb.possession verb.social verb.stative verb.weather adj.ppl").split()
ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")  # syntactic markers on adjectives in data.adj, e.g. 'galore(ip)'


def load_wordnet(pos=("noun", "verb", "adj", "adv")):
    """Each data.* line: 'offset lex_filenum ss_type w_cnt(hex) word lex_id ... | gloss'. Text = 'w1, w2: gloss'."""
    texts, labels = [], []
    for p in pos:
        with open(f"{WN}/data.{p}", encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue  # licence header
                head, _, gloss = line.partition(" | ")
                fld = head.split()
                lex = int(fld[1])
                n = int(fld[3], 16)
                words = [ADJ_MARKER.sub("", fld[4 + 2 * i]).replace("_", " ") for i in range(n)]
                texts.append(f"{', '.join(words)}: {gloss.strip()}")
                labels.append(LEXNAMES[lex])
    return np.array(texts, dtype=str), np.array(labels, dtype=str)


t0 = time.time()
T_all, y_all = load_wordnet()
names, counts = np.unique(y_all, return_counts=True)
print(f"WordNet 3.0: {len(T_all)} synsets, {len(names)} lexnames ({counts.min()}..{counts.max()}); parsed in "
      f"{time.time() - t0:.1f} s")
kept = names[counts >= MIN_PER_CLASS]
print(f"classes with >= {MIN_PER_CLASS} synsets: {len(kept)}; dropped: "
      f"{[(n, int(c)) for n, c in zip(names, counts) if c < MIN_PER_CLASS]}")

# file order: noun, verb, adj, adv, by offset
keep_idx = cap_per_class(y_all, kept, MAX_PER_CLASS, np.random.default_rng(0))
texts, y = T_all[keep_idx], y_all[keep_idx]
print(f"selected {len(texts)} synsets")

X, dt = embed_and_save("wordnet_supersenses_minilm.npz", texts, y)
print("examples:", list(zip(y[:2], texts[:2])))
cv_sanity(X, y)
print(f"total {time.time() - t0:.1f} s (embedding {dt:.1f} s)")
