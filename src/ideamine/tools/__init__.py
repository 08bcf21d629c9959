"""Real tools that produce evidence: compile, tests with coverage, lint, SAST, secrets, SBOM, OSV.

Every report carries the ``evidence`` envelope of docs/evidence.md, made by
``ideamine.tools.process``: what ran, which version, how long, how it ended. Nothing here
invents a measurement; a tool that could not run or was cut by its time limit says so.
"""
