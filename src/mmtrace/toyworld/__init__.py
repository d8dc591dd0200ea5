"""The toy world: a seeded, synthetic stand-in for VQA-Constraints that runs offline.

Entities have drawn images (attribute combinations: shape x colour x background) and facts; the
questions follow the released CSVs' schema with constraint annotations added.
"""
