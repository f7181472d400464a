"""The evaluation: questions over the corpora, run through the flows, scored with numbers."""
