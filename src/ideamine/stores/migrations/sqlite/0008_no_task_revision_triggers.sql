-- Every statement that inserts a task or changes a task's status or error now sets
-- `revision` itself (one stamp per statement, `Db.next_task_revision`), so the safety-net
-- triggers of migration 7 are dropped. Their mere presence made SQLite load the old and new
-- row for each write: ~15 µs more per inserted, leased or finished task row, three times per
-- task. A write made outside IdeaMine (a hand edit with `sqlite3`) is no longer stamped; a
-- process sees it when it next reads the run whole (at start or resume).
-- tests/unit/stores/test_task_revision_stamps.py checks that every such statement stamps.
-- Never edit once released.

DROP TRIGGER tasks_revision_insert;
DROP TRIGGER tasks_revision_update;
