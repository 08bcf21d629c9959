-- A run's pipeline in compiled form (zlib-compressed JSON of the frozen PipelineSpec, without
-- the texts, which are in `files`): `ideamine resume` drives a run whose configuration folder
-- still reads as pinned from it, without parsing the YAML again (ideamine.config.compiled).
-- NULL for runs pinned before this migration, or on a pipeline the form cannot carry exactly;
-- those resume from their texts, as before.
-- Never edit once released.

ALTER TABLE run_configs ADD COLUMN compiled BLOB;
