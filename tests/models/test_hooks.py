"""The one hooking layer: hooks are removed whatever happens, captures and patches act on the
named site only, and the attention switch is undone."""

from __future__ import annotations

import pytest
import torch
from support.tiny_models import inputs, llama, llava

from mmtrace.models.attention import attention_implementation
from mmtrace.models.hooks import capture, output_hook, patch
from mmtrace.models.lookup import SITES, locate


def _hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_are_removed_when_the_block_raises():
    model = llama()
    blocks = locate(model)
    with torch.no_grad():
        model(**inputs(False)[0])  # transformers registers hooks of its own on the first forward
    own = _hook_count(model)
    with pytest.raises(RuntimeError, match="inside"), output_hook(blocks.layers[0], print):
        assert _hook_count(model) == own + 1
        raise RuntimeError("inside")
    assert _hook_count(model) == own


@pytest.mark.parametrize("site", SITES)
def test_patch_writes_the_captured_clean_values(site):
    """Patching every position of a site at the last layer with its clean value: the site's
    output in the corrupted run is then the clean one, and for `hidden` (the block's output, all
    the LM head reads) so are the logits."""
    model = llava("llama")
    clean, corrupted, _ = inputs(True)
    blocks = locate(model)
    with torch.no_grad():
        model(**clean)  # transformers registers hooks of its own on the first forward
    own = _hook_count(model)
    with torch.no_grad(), capture(blocks, site, range(len(blocks))) as cache:
        p_clean = model(**clean).logits
    assert sorted(cache) == list(range(len(blocks)))
    seq = clean["input_ids"].shape[1]
    layer = len(blocks) - 1
    with (
        torch.no_grad(),
        patch(blocks, site, {layer: range(seq)}, cache),
        capture(blocks, site, [layer]) as seen,
    ):
        p_patched = model(**corrupted).logits
    torch.testing.assert_close(seen[layer], cache[layer])
    if site == "hidden":
        torch.testing.assert_close(p_patched, p_clean)
    assert _hook_count(model) == own


def test_attention_switch_is_restored():
    model = llava("phi")
    blocks = locate(model)
    configs = {id(m.config): m.config for m in blocks.layers.modules() if hasattr(m, "config")}
    before = {k: c._attn_implementation for k, c in configs.items()}
    with pytest.raises(KeyError), attention_implementation(blocks.layers, "eager"):
        assert {c._attn_implementation for c in configs.values()} == {"eager"}
        raise KeyError("inside")
    assert {k: c._attn_implementation for k, c in configs.items()} == before
