"""IdeaMine benchmarks: the peers' workloads (W1 pipeline, W2 fan-out, W3 crash-resume) on
IdeaMine, plus the offline pipeline of one real idea. Run everything with
``python bench/run.py [--quick]``; see docs/benchmarks.md."""
