"""Evaluation harness: scores answers, citations and retrieval on question sets (`rag eval`)."""
