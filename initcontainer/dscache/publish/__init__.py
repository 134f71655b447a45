"""The producer side (`dscache publish`): `pack` (scan a tree, build reproducible archives), `upload`
(archives, then the metadata naming them), `hfshards` (the Hugging Face shard variant)."""
