"""The floor: a program that does nothing, built by the same spec as nftune
(bench/package.py times `nftune --version` against it)."""
