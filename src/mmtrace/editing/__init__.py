"""MultEdit and its baselines: editing the causal MLP of an MLLM (docs/method.md §7; Figs. 6,
14)."""
