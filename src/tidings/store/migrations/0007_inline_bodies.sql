-- Small objects keep their bytes in the row itself: a PUT of one is then a single
-- group-committed transaction (no file to create, fsync and rename), and a GET one read.

ALTER TABLE object_versions ADD COLUMN body BLOB;
