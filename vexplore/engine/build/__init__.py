"""Build: pieces into compiled callables.

In: a ``Split`` and a ``CompileConfig``. Planned into one ``PieceJob`` per unique piece and size,
looked up in the cache tiers, compiled where missing (in process, or in crash-isolated workers) down
the fallback ladder, validated against eager when asked.
Out: a ``GraphResult`` (the stitched runtime from ``runtime/`` and the report's pieces and events).
"""
