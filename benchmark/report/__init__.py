"""Reports built from run records alone: the results table, the cost-limit figure, the diff.

`records` groups records into cells (refusing or labelling what must not be averaged),
`stats` holds the aggregates, `published` the DRCORL numbers; `table`, `figures` and `diff`
are the CLI verbs. Nothing here imports torch, an algorithm or the runner.
"""
