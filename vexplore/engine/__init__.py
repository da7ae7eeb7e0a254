"""The compile engine: split, compile, dedupe, cache, fall back, stitch, report."""
