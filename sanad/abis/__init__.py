"""ABIS: the 1:N gallery index, template encodings and the deduplication decision."""
