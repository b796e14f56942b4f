"""Procedural generators: coloured-shape scenes and person-like figures."""
