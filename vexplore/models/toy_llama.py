"""A toy Llama: embedding, RMSNorm, attention as a torch.library custom op, SwiGLU MLP.

The attention op ``vexplore::attention`` is the demo's split op: serving engines run attention
outside the compiled graph, so the graph is cut there and each layer's MLP+projections become
one piece; the pieces of layers 1..n-1 are identical and compile once.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _causal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # [1, heads, tokens, head_dim]: SDPA's flash/memory-efficient kernels want 4-D inputs (3-D
    # ones fall back to the slow math path on GPU).
    q4, k4, v4 = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
    return F.scaled_dot_product_attention(q4, k4, v4, is_causal=True).squeeze(0).transpose(0, 1)


@torch.library.custom_op("vexplore::attention", mutates_args=())
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention over [tokens, heads, head_dim] tensors; returns a contiguous result."""
    return _causal(q, k, v).contiguous()


@attention.register_fake
def _attention_fake(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return q.new_empty(q.shape)


def _attention_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:
    ctx.save_for_backward(*inputs)


def _attention_backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # recompute the forward with autograd on: the op stays opaque to the compiler, yet trainable
    with torch.enable_grad():
        q, k, v = (t.detach().requires_grad_() for t in ctx.saved_tensors)
        q4, k4, v4 = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q4, k4, v4, is_causal=True).squeeze(0).transpose(0, 1)
        return torch.autograd.grad(out, (q, k, v), grad)


attention.register_autograd(_attention_backward, setup_context=_attention_setup)


@torch.library.custom_op("vexplore::attention_out", mutates_args=("out",))
def attention_out(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor) -> None:
    """``vexplore::attention`` writing into ``out``: under piecewise CUDA graphs the split op then
    writes straight into the next graph's input buffer (vexplore finds ``<op>_out`` itself)."""
    out.copy_(_causal(q, k, v))   # SDPA has no out=; the copy is the transpose .contiguous() does anyway


@attention_out.register_fake
def _attention_out_fake(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor) -> None:
    return None


@dataclass(frozen=True)
class ToyLlamaConfig:
    vocab: int = 256
    dim: int = 64
    layers: int = 4
    heads: int = 4
    ffn: int = 128
    eps: float = 1e-5


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(var + self.eps)).to(x.dtype) * self.weight


class Block(nn.Module):
    def __init__(self, c: ToyLlamaConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = c.heads, c.dim // c.heads
        self.attn_norm = RMSNorm(c.dim, c.eps)
        self.qkv = nn.Linear(c.dim, 3 * c.dim, bias=False)
        self.o = nn.Linear(c.dim, c.dim, bias=False)
        self.mlp_norm = RMSNorm(c.dim, c.eps)
        self.gate_up = nn.Linear(c.dim, 2 * c.ffn, bias=False)
        self.down = nn.Linear(c.ffn, c.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[0]
        q, k, v = self.qkv(self.attn_norm(x)).chunk(3, dim=-1)
        shape = (t, self.heads, self.head_dim)
        a = torch.ops.vexplore.attention(q.reshape(shape), k.reshape(shape), v.reshape(shape))
        x = x + self.o(a.reshape(t, -1))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class ToyLlama(nn.Module):
    """``ToyLlama()(token_ids)`` with token_ids of shape [tokens] returns logits [tokens, vocab]."""

    def __init__(self, config: ToyLlamaConfig | None = None, **kw: int) -> None:
        super().__init__()
        c = config or ToyLlamaConfig(**kw)
        self.config = c
        self.embed = nn.Embedding(c.vocab, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.dim, c.eps)
        self.lm_head = nn.Linear(c.dim, c.vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))

    def example_inputs(self, tokens: int = 16, device: str | torch.device = "cpu", seed: int = 0) -> tuple[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return (torch.randint(0, self.config.vocab, (tokens,), generator=g).to(device),)
