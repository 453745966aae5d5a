"""Experiments: the only place that parses flags. Turns them into config sections, runs the stages of
the method in order on a run directory, and holds the benchmarks."""
