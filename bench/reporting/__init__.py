"""Results: the versioned schema, compare (the regression gate), merge, Markdown, plots, the report table."""
