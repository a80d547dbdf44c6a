"""Article stores other than the embedded FAISS index (see pgvector_store)."""
