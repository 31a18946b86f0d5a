-- A stand-in for TimescaleDB 2.x, for the tests only (never installed by the package).
-- It has what pgbackup-tui's dump and restore touch, under the real names: the catalog views
-- timescaledb_information.hypertables / .dimensions, create_hypertable() with 2.x's signature,
-- timescaledb_pre_restore() / timescaledb_post_restore() setting the database's
-- timescaledb.restoring as the real ones do, and catalog tables whose rows a dump carries
-- (pg_extension_config_dump, as the real _timescaledb_catalog). On top, for the tests: every call
-- of the two functions and every DDL command is recorded with a timestamp and the value of
-- timescaledb.restoring at that moment, in _timescaledb_standin.calls.
\echo Use "CREATE EXTENSION timescaledb" to load this file. \quit

CREATE SCHEMA _timescaledb_catalog;
CREATE SCHEMA timescaledb_information;
CREATE SCHEMA _timescaledb_standin;

CREATE TABLE _timescaledb_catalog.hypertable (
    id serial PRIMARY KEY,
    schema_name name NOT NULL,
    table_name name NOT NULL,
    UNIQUE (schema_name, table_name)
);
CREATE TABLE _timescaledb_catalog.dimension (
    id serial PRIMARY KEY,
    hypertable_id integer NOT NULL REFERENCES _timescaledb_catalog.hypertable (id) ON DELETE CASCADE,
    column_name name NOT NULL,
    column_type regtype NOT NULL,
    interval_length bigint,  -- microseconds for time types, units for integers; NULL: a space dimension
    num_slices smallint
);
SELECT pg_catalog.pg_extension_config_dump('_timescaledb_catalog.hypertable', '');
SELECT pg_catalog.pg_extension_config_dump('_timescaledb_catalog.hypertable_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('_timescaledb_catalog.dimension', '');
SELECT pg_catalog.pg_extension_config_dump('_timescaledb_catalog.dimension_id_seq', '');

-- Not dumped: what happened in this database.
CREATE TABLE _timescaledb_standin.calls (
    id bigserial PRIMARY KEY,
    call text NOT NULL,
    restoring text,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    detail text
);

CREATE VIEW timescaledb_information.hypertables AS
SELECT h.schema_name AS hypertable_schema, h.table_name AS hypertable_name,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       (SELECT count(*) FROM _timescaledb_catalog.dimension d WHERE d.hypertable_id = h.id)::smallint AS num_dimensions,
       0::bigint AS num_chunks, false AS compression_enabled, NULL::name[] AS tablespaces
FROM _timescaledb_catalog.hypertable h
JOIN pg_catalog.pg_namespace n ON n.nspname = h.schema_name
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = h.table_name;

CREATE VIEW timescaledb_information.dimensions AS
SELECT h.schema_name AS hypertable_schema, h.table_name AS hypertable_name,
       row_number() OVER (PARTITION BY d.hypertable_id ORDER BY d.id)::integer AS dimension_number,
       d.column_name, d.column_type,
       CASE WHEN d.interval_length IS NULL THEN 'Space' ELSE 'Time' END AS dimension_type,
       CASE WHEN d.column_type IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
            THEN justify_hours(d.interval_length * interval '1 microsecond') END AS time_interval,
       CASE WHEN d.column_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
            THEN d.interval_length END AS integer_interval,
       NULL::regproc AS integer_now_func, d.num_slices AS num_partitions
FROM _timescaledb_catalog.dimension d JOIN _timescaledb_catalog.hypertable h ON h.id = d.hypertable_id;

-- 2.x's signature (the arguments after chunk_time_interval are accepted and ignored).
CREATE FUNCTION create_hypertable(
    relation regclass, time_column_name name, partitioning_column name = NULL, number_partitions integer = NULL,
    associated_schema_name name = NULL, associated_table_prefix name = NULL,
    chunk_time_interval anyelement = NULL::bigint, create_default_indexes boolean = TRUE,
    if_not_exists boolean = FALSE, partitioning_func regproc = NULL, migrate_data boolean = FALSE,
    chunk_target_size text = NULL, chunk_sizing_func regproc = NULL, time_partitioning_func regproc = NULL)
RETURNS TABLE (hypertable_id integer, schema_name name, table_name name, created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    rel_schema name;
    rel_name name;
    col_type regtype;
    length bigint;
    new_id integer;
BEGIN
    SELECT n.nspname, c.relname INTO rel_schema, rel_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = relation;
    SELECT h.id INTO new_id FROM _timescaledb_catalog.hypertable h
    WHERE h.schema_name = rel_schema AND h.table_name = rel_name;
    IF FOUND THEN
        IF if_not_exists THEN
            RETURN QUERY SELECT new_id, rel_schema, rel_name, false;
            RETURN;
        END IF;
        RAISE EXCEPTION 'table "%" is already a hypertable', rel_name;
    END IF;
    SELECT a.atttypid::regtype INTO col_type FROM pg_attribute a
    WHERE a.attrelid = relation AND a.attname = time_column_name AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" does not exist', time_column_name;
    END IF;
    IF chunk_time_interval IS NULL THEN
        length := CASE WHEN col_type IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
                       THEN 604800000000 ELSE 100000 END;  -- 7 days; integers: 2.x has no default either
    ELSIF pg_typeof(chunk_time_interval) = 'interval'::regtype THEN
        length := (extract(epoch FROM chunk_time_interval::text::interval) * 1000000)::bigint;
    ELSE
        length := chunk_time_interval::text::bigint;
    END IF;
    INSERT INTO _timescaledb_catalog.hypertable (schema_name, table_name) VALUES (rel_schema, rel_name)
    RETURNING id INTO new_id;
    INSERT INTO _timescaledb_catalog.dimension (hypertable_id, column_name, column_type, interval_length)
    VALUES (new_id, time_column_name, col_type, length);
    IF partitioning_column IS NOT NULL THEN
        INSERT INTO _timescaledb_catalog.dimension (hypertable_id, column_name, column_type, num_slices)
        SELECT new_id, partitioning_column, a.atttypid::regtype, number_partitions
        FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = partitioning_column;
    END IF;
    RETURN QUERY SELECT new_id, rel_schema, rel_name, true;
END
$$;

-- As the real ones: the setting at the database's level (for the restore's new sessions) and in
-- this session. post_restore also records the rows each hypertable holds when it runs.
CREATE FUNCTION timescaledb_pre_restore() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET timescaledb.restoring = ''on''', current_database());
    SET SESSION timescaledb.restoring = 'on';
    INSERT INTO _timescaledb_standin.calls (call, restoring) VALUES ('pre_restore', 'on');
    RETURN true;
END
$$;

CREATE FUNCTION timescaledb_post_restore() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    counts text := '';
    ht record;
    n bigint;
BEGIN
    FOR ht IN SELECT h.schema_name, h.table_name FROM _timescaledb_catalog.hypertable h ORDER BY 1, 2 LOOP
        EXECUTE format('SELECT count(*) FROM %I.%I', ht.schema_name, ht.table_name) INTO n;
        counts := counts || format('%s.%s=%s ', ht.schema_name, ht.table_name, n);
    END LOOP;
    EXECUTE format('ALTER DATABASE %I RESET timescaledb.restoring', current_database());
    SET timescaledb.restoring TO off;
    INSERT INTO _timescaledb_standin.calls (call, restoring, detail) VALUES ('post_restore', 'off', rtrim(counts));
    RETURN true;
END
$$;

CREATE FUNCTION _timescaledb_standin.record_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
    command record;
BEGIN
    FOR command IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        INSERT INTO _timescaledb_standin.calls (call, restoring, detail)
        VALUES ('ddl', current_setting('timescaledb.restoring', true),
                command.command_tag || ' ' || coalesce(command.object_identity, ''));
    END LOOP;
END
$$;
CREATE EVENT TRIGGER _timescaledb_standin_ddl ON ddl_command_end EXECUTE FUNCTION _timescaledb_standin.record_ddl();
