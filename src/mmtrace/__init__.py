"""mmtrace: information storage and transfer in multi-modal LLMs, reproducibly."""

__version__ = "0.1.0"
