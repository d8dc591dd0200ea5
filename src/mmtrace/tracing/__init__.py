"""MultiModalCausalTrace: where an MLLM stores the facts it needs (docs/method.md §4; Figs. 1,
3, 4 and 12)."""
