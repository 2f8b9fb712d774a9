"""The recipe runner: the only place that composes passes, export and measurement.

``run(model, recipe, options)`` walks a recipe (a list of step configs) in order through the
handlers in ``compress.pipeline.steps``; the CLI and the Python API both call it.
"""
