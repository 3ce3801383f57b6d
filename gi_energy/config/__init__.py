"""What the user asked for, validated once at the edge: the problem as frozen dataclasses
(problem.py), read from TOML by parse.py with checks.py, and the search space, genomes and
grid levels (space.py)."""
