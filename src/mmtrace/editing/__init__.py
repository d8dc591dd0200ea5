"""MultEdit and its baselines: editing the causal MLP of an MLLM (SPEC section 7)."""
