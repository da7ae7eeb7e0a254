"""Real models on CPU, called as their users call them (keywords, under torch.no_grad(), in eval()):
tiny Hugging Face LlamaForCausalLM, GPT2LMHeadModel and BertModel built from configs in code (random
weights, nothing downloaded), and a small Conv2d+BatchNorm2d+ReLU net taking ``pixel_values``.

Each model is compiled once, into its own vexplore cache dir and Session, and checked on that one
compile: outputs against the same model run eagerly, at two lengths (or batch sizes) with one Dynamo
trace; the report's counters exactly; identical transformer layers folded into one unique piece
(``same_as``); memory hits on a recompile and disk hits in a fresh Session; and a graph with no split
op compiled as one piece, saying why.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import vexplore as vx

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

SDPA = "torch._C._nn.scaled_dot_product_attention"
PUBLIC = ("graphs_seen", "pieces", "compiled_pieces", "unique_pieces", "inductor_compiles", "eager_compiles",
          "cache_hits_memory", "cache_hits_disk", "cache_hits_remote", "cache_misses", "fallbacks",
          "cudagraph_captures")


def counts(report: vx.CompileReport, **nonzero: int) -> None:
    """The public counters of ``report`` are exactly ``nonzero``, every other one 0."""
    assert {k: report.counters[k] for k in PUBLIC} == {k: nonzero.get(k, 0) for k in PUBLIC}, report.table()


# Three layers, three split ops (SDPA): 2 * 3 + 1 = 7 pieces, 4 compiled. The first piece (embeddings
# and layer 0 up to attention) and the last (layer 2 after attention, final norm, head) are alike no
# other; the two between (layer i after attention + layer i+1 up to attention) differ only in which
# weights they are given (parameters are piece inputs), so they are one unique piece: 3 unique pieces,
# one general Inductor compile each (compile_sizes is empty), all missing in a fresh dir and Session.
COLD = dict(graphs_seen=1, pieces=7, compiled_pieces=4, unique_pieces=3, inductor_compiles=3, cache_misses=3)


def folded(report: vx.CompileReport) -> None:
    """Three transformer layers cut at attention: the two middle pieces share one compile."""
    p = report.pieces
    assert [x.kind for x in p] == ["compiled", "split_op"] * 3 + ["compiled"], report.table()
    assert all(x.split_ops == (SDPA,) for x in p if x.kind == "split_op")
    assert [x.same_as for x in p] == [None, None, None, None, 2, None, None]
    assert p[4].unique_key == p[2].unique_key and len({p[0].unique_key, p[2].unique_key, p[6].unique_key}) == 3
    assert p[4].compile_s == 0.0 and p[4].cache == p[2].cache and p[4].compiler == "inductor"
    assert [x.index for x in report.unique_pieces] == [0, 2, 6]
    assert report.counters["unique_pieces"] < report.counters["compiled_pieces"]


def _compile(model, tmp_path, **cfg) -> vx.CompiledModel:
    torch._dynamo.reset()
    return vx.compile(model, vx.CompileConfig(cache=vx.CacheConfig(dir=str(tmp_path / "vxcache")), **cfg),
                      session=vx.Session())


def _text(batch: int, n: int) -> dict[str, torch.Tensor]:
    """What a tokenizer gives for a padded batch: ids, and a mask with the last row left-padded."""
    ids, mask = torch.randint(0, 256, (batch, n)), torch.ones(batch, n, dtype=torch.long)
    mask[-1, : n // 3] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _same(cm, model, out: str, **inputs) -> None:
    torch.testing.assert_close(getattr(cm(**inputs), out), getattr(model(**inputs), out))


def test_llama_piecewise_folds_layers_and_recompile_hits_memory(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(num_hidden_layers=3, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=256, max_position_embeddings=256)
    model = transformers.LlamaForCausalLM(cfg).eval()
    cm = _compile(model, tmp_path, strategy="piecewise")
    with torch.no_grad():
        for n in (11, 19):
            _same(cm, model, "logits", **_text(2, n), use_cache=False)
        assert len(cm.graphs) == 1 and len(cm.reports) == 1   # the second length ran the first compile
        assert cm.token_dims == {"input_ids": (1,), "attention_mask": (1,)}
        rep = cm.report
        assert rep.strategy == "piecewise" and rep.warnings == ()
        counts(rep, **COLD)
        folded(rep)
        # The same config again, without Dynamo: every unique piece from the Session's memory tier.
        again = cm.recompile()
        assert again.kind == "recompile" and cm.report is again and len(cm.graphs) == 1
        counts(again, graphs_seen=1, pieces=7, compiled_pieces=4, unique_pieces=3, cache_hits_memory=3)
        folded(again)
        assert [p.unique_key for p in again.pieces] == [p.unique_key for p in rep.pieces]
        _same(cm, model, "logits", **_text(2, 7), use_cache=False)
    assert len(cm.graphs) == 1


def test_gpt2_piecewise_folds_layers_and_a_fresh_session_loads_from_disk(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=3, n_embd=64, n_head=4, vocab_size=256, n_positions=256,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    cm = _compile(model, tmp_path, strategy="piecewise")
    with torch.no_grad():
        for n in (10, 17):
            _same(cm, model, "logits", **_text(2, n), use_cache=False)
    assert len(cm.graphs) == 1 and len(cm.reports) == 1
    assert cm.report.strategy == "piecewise" and cm.report.warnings == ()
    counts(cm.report, **COLD)
    folded(cm.report)
    # A new Session over the same dir (as a new process would be): Dynamo traces again, nothing compiles.
    warm = _compile(model, tmp_path, strategy="piecewise")
    with torch.no_grad():
        _same(warm, model, "logits", **_text(2, 13), use_cache=False)
    counts(warm.report, graphs_seen=1, pieces=7, compiled_pieces=4, unique_pieces=3, cache_hits_disk=3)
    folded(warm.report)
    assert {p.cache for p in warm.report.pieces if p.kind == "compiled"} == {"disk"}
    assert [p.unique_key for p in warm.report.pieces] == [p.unique_key for p in cm.report.pieces]


def test_bert_default_config_splits_at_attention(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(num_hidden_layers=3, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                  vocab_size=256, max_position_embeddings=256)
    model = transformers.BertModel(cfg).eval()
    cm = _compile(model, tmp_path)   # the default strategy, "auto"
    with torch.no_grad():
        for n in (12, 21):
            inputs = _text(2, n)
            inputs["token_type_ids"] = (torch.arange(n) >= n // 2).long().expand(2, n).contiguous()   # sentence pairs
            _same(cm, model, "last_hidden_state", **inputs)
            _same(cm, model, "pooler_output", **inputs)
    assert len(cm.graphs) == 1 and len(cm.reports) == 1
    assert cm.token_dims == {"input_ids": (1,), "attention_mask": (1,), "token_type_ids": (1,)}
    rep = cm.report
    assert rep.strategy == "piecewise" and rep.strategy_reason.startswith("auto: ")
    assert rep.strategy_reason.endswith(f"nodes with split ops ({SDPA})") and rep.warnings == ()
    counts(rep, **COLD)
    folded(rep)


class ConvNet(nn.Module):
    """A stem conv, identical Conv2d+BatchNorm2d+ReLU blocks, global pooling and a linear head."""

    def __init__(self, channels: int = 8, blocks: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(*(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                                    nn.BatchNorm2d(channels), nn.ReLU()) for _ in range(blocks)))
        self.head = nn.Linear(channels, classes)
        for bn in self.modules():   # trained-looking statistics, so eval()'s batch norm is not the identity
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                nn.init.uniform_(bn.weight, 0.5, 1.5)
                nn.init.uniform_(bn.bias, -0.2, 0.2)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(pixel_values)).mean(dim=(2, 3)))


def test_conv_net_with_batch_norm_is_one_piece(tmp_path):
    torch.manual_seed(0)
    model = ConvNet().eval()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    cm = _compile(model, tmp_path)   # the default strategy, "auto"
    with torch.no_grad():
        for batch in (4, 3):
            x = torch.randn(batch, 3, 16, 16)
            torch.testing.assert_close(cm(pixel_values=x), model(pixel_values=x))
    assert len(cm.graphs) == 1 and len(cm.reports) == 1 and cm.token_dims == {"pixel_values": (0,)}
    rep = cm.report
    assert (rep.strategy, rep.strategy_reason) == ("full", "auto: the graph holds no split ops, so one piece")
    assert rep.warnings == ()
    counts(rep, graphs_seen=1, pieces=1, compiled_pieces=1, unique_pieces=1, inductor_compiles=1, cache_misses=1)
    (piece,) = rep.pieces
    assert (piece.kind, piece.compiler, piece.cache, piece.same_as) == ("compiled", "inductor", "miss", None)
    # eval(): batch norm reads its running statistics and writes nothing back (train() would list them here)
    assert piece.writes == ()
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in stats.items())
    # Asking for piecewise finds nothing to cut at: the same one piece (a memory hit), and a warning saying so.
    pw = cm.recompile(strategy="piecewise")
    assert pw.strategy == "piecewise" and [w.kind for w in pw.warnings] == ["no_split"]
    assert "no split points found" in pw.warnings[0]
    counts(pw, graphs_seen=1, pieces=1, compiled_pieces=1, unique_pieces=1, cache_hits_memory=1)
    assert pw.pieces[0].unique_key == piece.unique_key
    with torch.no_grad():
        x = torch.randn(5, 3, 16, 16)
        torch.testing.assert_close(cm(pixel_values=x), model(pixel_values=x))
    assert len(cm.graphs) == 1
