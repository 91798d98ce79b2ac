"""ctsft runtime: the Python/PyTorch side of ctsft (Circuit-Targeted Supervised Fine-Tuning)."""

__version__ = "0.1.0"
