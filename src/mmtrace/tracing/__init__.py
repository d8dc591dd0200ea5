"""MultiModalCausalTrace: where an MLLM stores the facts it needs (SPEC section 4)."""
