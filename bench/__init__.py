"""Kave's benchmark (`make bench`); see bench/__main__.py."""
