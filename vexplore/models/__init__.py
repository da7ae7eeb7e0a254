"""Small built-in models for the demo, the notebooks and the tests."""
from .toy_llama import ToyLlama, ToyLlamaConfig, attention

__all__ = ["ToyLlama", "ToyLlamaConfig", "attention"]
