"""Information transfer: per-token attention contributions (docs/method.md §5, Eq. 1) and the
visual-token ablation (§6)."""
