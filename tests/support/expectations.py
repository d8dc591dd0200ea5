"""What the tests expect of the project's outputs, stated once."""

# The keys every causal-trace record has, from `mmtrace trace` and from the workflow alike.
TRACE_RECORD_KEYS = frozenset(
    {
        "input_ids",
        "corrupted_input_ids",
        "tokens",
        "roles",
        "positions",
        "layers",
        "answer_token_id",
        "answer",
        "p_clean",
        "p_corr",
        "ie",
        "exactness",  # which path traced it (engine or reference) and the engine's check
    }
)
