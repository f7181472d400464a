"""Document retrieval: a SQLite FTS5 store with bm25 ranking, and its activities."""
