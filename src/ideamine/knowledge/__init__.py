"""Knowledge: the Q/A/V loop, the knowledge base (frames, search) and the guards.

``ideamine.knowledge.guards`` holds the plug-ins that check a phase attempt's artifacts
before its gate scores them (SPEC §1, §5 Gate).
"""
