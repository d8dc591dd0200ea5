"""Model access: the one place that touches a transformer's internals.

Modules: `loading` (checkpoints, safetensors only) and `adapters` (Bunny without remote code),
`lookup` (decoder blocks, projector and projections found by structure; the hook-site
vocabulary), `hooks` (every forward hook the package registers), `attention` (switching the
attention implementation), `encoding` (questions to model inputs, constraints to token
positions), `scoring` (next-token and answer probabilities), `prefix` (a prompt's unchanged
prefix run once into a cache); and the toy models: `toy`
(architectures), `tokenizer`, `curriculum` (training examples and batches), `optimise`, `train`.
"""
