"""paperwire: an open-source research-paper discovery hub."""

__version__ = "0.1.0"
