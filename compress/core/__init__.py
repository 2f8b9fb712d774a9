"""The bottom layer: errors, the step registry, Model, input specs, the forward-loop type, atomic writes, output-directory rules, progress, versions. Imports nothing of ours."""
