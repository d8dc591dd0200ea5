"""Information transfer: per-token attention contributions (SPEC section 5, Eq. 1)."""
