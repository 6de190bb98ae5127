"""The HTTP layer: validation, translation and error mapping around `rag.pipeline.Pipeline`."""
