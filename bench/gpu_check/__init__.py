"""A one-shot check of everything GPU-side, made to finish within minutes on one lent GPU.

    python -m bench.gpu_check --out DIR [--time-limit 480] [--steps a,b,...] [--quick]

See ``bench.gpu_check.steps`` for what each step does. On a machine without a GPU the same
command is the dry run: every step that can run here runs, the GPU ones are recorded as skipped
with the reason, and the JSON and log are written all the same.
"""
