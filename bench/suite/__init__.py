"""``compress bench run``: every artifact of every path on every backend present, peers beside them, one worker process per measurement."""
