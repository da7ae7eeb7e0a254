"""Runtime: what runs on every call after a compile.

In: the compiled pieces of one graph (callables) and the config's CUDA-graph settings.
Out: one callable: the pieces stitched in order (no CUDA graphs), or a size policy that replays a
captured CUDA graph per size (full or piecewise) and says why a size runs without one; a piece that
raises at call time runs eagerly from then on (emergency fallback).
Imports capture/ only below it: split/ and build/ assemble what lives here.
"""
