"""selfimprove: the self-improving loops of chapter 38, runnable and measurable on a laptop CPU."""

__version__ = "0.1.0"
