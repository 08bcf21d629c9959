"""``ideamine eval``: the pipeline run over a set of real ideas and scored end to end.

The metrics are the ChatDev paper's (completeness, executability, consistency and quality,
their product) plus specificity (artifacts about their own idea, not generic) and validity
(every artifact against its schema, the OpenAPI document, the CycloneDX SBOM). See
``docs/eval.md``.
"""
