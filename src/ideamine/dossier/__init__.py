"""Release dossiers (SPEC §8): compile a run into one signed, versioned document and export
it as JSON, HTML, PDF or Markdown.

``compile.compile_run`` is the entry point; ``sign.verify_file`` checks a JSON export.
"""
