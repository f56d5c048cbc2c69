"""Ensembles of long-tailed classifiers that end as one model.

:class:`BalancedUndersampleMerger` implements Balanced Training and Merging
(BTM, Yu, Du and Wu): fine-tune copies of a pre-trained model on few-shot
class-balanced subsets, average their weights into one model of the same size
(no inference overhead), then post-train its final linear layer with
class-balanced sampling. It raises the harmonic and geometric mean of
per-class recall, i.e. it helps the worst classes. :func:`draw_balanced_subsets`
draws the subsets on their own.
"""

from ._btm import BalancedUndersampleMerger, draw_balanced_subsets

__all__ = ["BalancedUndersampleMerger", "draw_balanced_subsets"]
