"""Benchmarks (`make bench`): each prints figures as ratios against a same-run baseline."""
