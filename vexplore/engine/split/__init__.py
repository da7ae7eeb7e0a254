"""Split: where a captured graph is cut, and into which pieces.

In: a ``CapturedGraph`` and a ``CompileConfig`` (split ops, split policy, post-grad passes).
Out: a ``Split`` (the pieces in execution order, each with its fake-propagated inputs), the cuts a
policy added and why, the cost model those policies read, and structural fingerprints.
"""
