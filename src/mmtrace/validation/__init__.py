"""Method validation: every method scored against controls whose mechanism is known.

A positive control (`toy-llava-compiled`, `mmtrace.models.compiled`) has a ground truth written
beside its checkpoint: where its route runs, per site kind, position and layer. A negative
control (the compiled model with its route cut, a randomly initialised LLaVA) has none. The
checks here read the analyses' own outputs (trace, attention-contribution, ablation and editing
records: plain JSON; only tracing's window convention is shared) and apply the rules of the config's
`validation` section, fixed before the run: a positive control *passes* a rule when the method
finds the mechanism, a negative control *fires* it when the method reports a mechanism that is
not there. Modules: `routes` (the planted cells of a trace), `checks` (one function per method),
`summary` (every control, the false-positive rate).
"""
