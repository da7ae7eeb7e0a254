"""Benchmarks: timing primitives and eager-vs-compiled comparison."""
