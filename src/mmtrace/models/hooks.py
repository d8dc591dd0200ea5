"""Hooks: the one place the package registers PyTorch forward hooks (a grep test enforces it).

Every method that reads or writes activations (tracing's restorations, Eq. 1's captures, the
visual-token knockouts, MultEdit's key and value) goes through the context managers here, so hooks
are always removed, whatever happens inside the block, and a reader finds in one file every way
the package touches a running model. Sites are named as in `mmtrace.models.lookup.SITES`.

Decoder layers return tensors in transformers 5 and attention modules return tuples; both are
handled by acting on the first element (`first_output`, `replace_first_output`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from mmtrace.models.lookup import DecoderBlocks

Hook = tuple[nn.Module, Callable[..., Any]]


@contextmanager
def removing(handles: list) -> Iterator[None]:
    """Remove the hook handles when the block exits, whatever happens inside it."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def output_hooks(hooks: Iterable[Hook], *, with_kwargs: bool = False) -> Iterator[None]:
    """Forward hooks `fn(module, args, output)` (with `with_kwargs`: `fn(module, args, kwargs,
    output)`) on each (module, fn) for the block; a hook returning a value replaces the output."""
    handles = [m.register_forward_hook(fn, with_kwargs=with_kwargs) for m, fn in hooks]
    with removing(handles):
        yield


@contextmanager
def input_hooks(hooks: Iterable[Hook], *, with_kwargs: bool = False) -> Iterator[None]:
    """Forward pre-hooks `fn(module, args)` (with `with_kwargs`: `fn(module, args, kwargs)`) on
    each (module, fn) for the block; a hook returning a value replaces the inputs."""
    handles = [m.register_forward_pre_hook(fn, with_kwargs=with_kwargs) for m, fn in hooks]
    with removing(handles):
        yield


def output_hook(module: nn.Module, fn: Callable[..., Any], *, with_kwargs: bool = False):
    """`output_hooks` for one module."""
    return output_hooks([(module, fn)], with_kwargs=with_kwargs)


def input_hook(module: nn.Module, fn: Callable[..., Any], *, with_kwargs: bool = False):
    """`input_hooks` for one module."""
    return input_hooks([(module, fn)], with_kwargs=with_kwargs)


@contextmanager
def head_calls(model: nn.Module, callback: Callable[[], Any]) -> Iterator[None]:
    """Call `callback()` after every call of the model's output head (one per forward pass or
    batch of restorations, knockouts or optimisation steps): how long analyses report their
    progress without reaching into the analyses. A model without an output head: no calls."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        yield
        return

    def hook(_module, _args, _output) -> None:  # returns nothing: the output is unchanged
        callback()

    with output_hook(head, hook):
        yield


def first_output(output):
    """The tensor of a module's output (attention modules return a tuple, layers a tensor)."""
    return output[0] if isinstance(output, tuple) else output


def replace_first_output(output, new: torch.Tensor):
    """`output` with its tensor replaced by `new`, in the same container."""
    return (new, *output[1:]) if isinstance(output, tuple) else new


def layer_input(args: tuple, kwargs: Mapping[str, Any]) -> torch.Tensor:
    """The hidden states a decoder layer or attention module is called with (by position or by
    keyword, as transformers versions differ)."""
    return kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]


def replace_layer_input(args: tuple, kwargs: dict[str, Any], new: torch.Tensor) -> tuple:
    """(args, kwargs) with the hidden states replaced by `new`, wherever `layer_input` found
    them: what a forward pre-hook registered `with_kwargs` returns to change a layer's input."""
    if "hidden_states" in kwargs:
        return args, {**kwargs, "hidden_states": new}
    return (new, *args[1:]), kwargs


@contextmanager
def capture(blocks: DecoderBlocks, kind: str, layers: Sequence[int]) -> Iterator[dict]:
    """Record the output of site `kind` at `layers` during the forward passes inside the block."""
    cache: dict[int, torch.Tensor] = {}

    def recorder(layer: int):
        def hook(_m, _i, out):
            cache[layer] = first_output(out).detach().clone()

        return hook

    with output_hooks((blocks.module(kind, layer), recorder(layer)) for layer in layers):
        yield cache


@contextmanager
def patch(
    blocks: DecoderBlocks,
    kind: str,
    positions_by_layer: Mapping[int, Sequence[int]],
    clean: Mapping[int, torch.Tensor],
) -> Iterator[None]:
    """Overwrite the output of site `kind` at the given layers and token positions with the
    clean run's values (every batch row gets the same restoration)."""

    def restorer(layer: int, pos: torch.Tensor):
        def hook(_m, _i, out):
            hidden = first_output(out).clone()
            src = clean[layer].to(hidden.dtype)
            hidden[:, pos] = src[:, pos].expand(hidden.shape[0], -1, -1)
            return replace_first_output(out, hidden)

        return hook

    hooks = [
        (blocks.module(kind, layer), restorer(layer, torch.as_tensor(list(positions))))
        for layer, positions in positions_by_layer.items()
        if positions
    ]
    with output_hooks(hooks):
        yield
