"""``--prune auto``: the most compressed pruning, distilled, that stays within the tolerance."""
