"""Paper-facing outputs: LaTeX tables and figures, written deterministically so reruns of the
workflow produce byte-identical artefacts (and a diff means the numbers changed)."""
