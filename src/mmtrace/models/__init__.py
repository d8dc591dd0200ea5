"""Model access (loading, scoring) and the toy models' construction and training."""
