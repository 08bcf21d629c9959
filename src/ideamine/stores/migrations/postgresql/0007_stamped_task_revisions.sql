-- SQLite's migration 7 lets the writing statements stamp task revisions themselves. Here
-- the BEFORE triggers of migration 6 already set the revision in the row being written (the
-- transaction id), at no extra cost, and overwrite whatever a statement sets, so nothing
-- changes. The file keeps both dialects at the same schema version. Never edit once released.

SELECT 1;
