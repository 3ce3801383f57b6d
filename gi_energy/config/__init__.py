"""What the user asked for, validated once at the edge: the problem file as frozen
dataclasses (problem.py) and the search space, genomes and grid levels (space.py)."""
