"""JSON and Atom APIs: paperwire's own (v1), Hugging Face-compatible (hf), arXiv-compatible (arxiv)."""
