"""qabot: answers questions about news articles with retrieval (FAISS + BM25) and an extractive reader.

Importing the package switches off Hugging Face hub access and Haystack telemetry unless the user has set
those variables explicitly: every model loads from a local path by default, and a user with internet who
points ``config.yaml`` at a hub model can still export ``HF_HUB_OFFLINE=0``.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# FAISS's OpenMP threads would otherwise busy-wait after each (tiny) search and steal the cores the reader
# needs next: answers took 52-67 ms with OMP_WAIT_POLICY=ACTIVE, 43 ms with PASSIVE
# (benchmarks/profile_answer.py). Must precede faiss' import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
