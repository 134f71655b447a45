"""Remotes: S3-compatible stores, the Hugging Face Hub, plain HTTP and local directories."""
