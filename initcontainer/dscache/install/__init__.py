"""The single writer: plan -> ingest -> verify -> commit of versions into a cache."""
