"""Capture: what Dynamo hands the backend, and what vexplore learns of it before splitting.

In: a Dynamo FX graph and its example inputs (and, before the first trace, the model's call).
Out: a ``CapturedGraph`` (the graph, its inputs' roles, what it writes in place, its token dims),
and the graph breaks and recompiles explained in the user's terms.
"""
