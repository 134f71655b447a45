"""The producer side: scan and pack a tree, upload archives and manifests."""
