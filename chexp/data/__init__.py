"""Data access: remote files with checksums (:mod:`.remote`) and image reading (:mod:`.images`)."""
