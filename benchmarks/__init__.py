"""primo against its peers, side by side (see README.md); a package so that ``python -m benchmarks.<name>`` works."""
